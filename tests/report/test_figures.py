"""Figure builders: valid plotly specs, no empty chart, config sizes, heatmaps."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import pytest

from harness.report import figures as F
from harness.report import render_report


def specs(page: str) -> list[dict]:
    return [
        json.loads(s) for s in re.findall(r'<script type="application/json" id="fig-\d+-spec">(.*?)</script>', page)
    ]


def test_every_embedded_spec_is_valid_plotly(report_case):
    """The builders write plain dicts for speed; plotly's own validator checks them here."""
    page = render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir).read_text()
    found = specs(page)
    assert found
    for spec in found:
        fig = go.Figure(spec)  # raises ValueError on an unknown or ill-typed property
        assert F.n_points(spec) > 0 and len(fig.data) >= 1


def test_embed_refuses_a_figure_without_data():
    figs = F.Figures()
    nan = F.figure([{"type": "scatter", "x": [1, 2], "y": [float("nan"), None]}], F.base_layout("t"))
    assert figs.embed(nan, empty="nothing here") == '<p class="nodata">nothing here</p>'
    assert figs.embed(None, empty="none") == '<p class="nodata">none</p>'
    assert figs.count == 0
    ok = F.figure([{"type": "bar", "x": ["a"], "y": [1.0]}], F.base_layout("t"))
    assert 'id="fig-1"' in figs.embed(ok, empty="") and figs.count == 1


def test_embedded_json_cannot_end_its_script_element():
    figs = F.Figures()
    html = figs.embed(F.figure([{"type": "bar", "x": ["</script><b>"], "y": [1.0]}], F.base_layout("t")), empty="")
    assert "</script><b>" not in html and html.count("</script>") == 1
    spec = json.loads(re.search(r'-spec">(.*)</script>', html).group(1))
    assert spec["data"][0]["x"] == ["</script><b>"]  # \u003c decodes back to "<"


@pytest.mark.parametrize(
    "labels, want",
    [
        (["m=32,k=32,n=32,batch=0", "m=64,k=64,n=64,batch=0"], ([32.0, 64.0], "m=k=n", True)),
        (["n=1024", "n=4096", "n=256"], ([1024.0, 4096.0, 256.0], "n", True)),
        (["B=8 T=128", "B=16 T=256"], ([8.0, 16.0], "B (with T)", True)),
        (["512", "2048"], ([512.0, 2048.0], "size", True)),
        (["m=7,k=13,n=5", "m=33,k=70,n=41", "m=5,k=9,n=11"], ([0.0, 1.0, 2.0], "config", False)),  # not monotone
        (["small", "large"], ([0.0, 1.0], "config", False)),
        (["n=0", "n=8"], ([0.0, 1.0], "config", False)),  # 0 has no place on a log axis
    ],
)
def test_size_axis(labels, want):
    assert F.size_axis(labels) == want


def test_log_axis_only_for_wide_positive_ranges():
    assert F._log_axis([0.01, 10.0]) and not F._log_axis([1.0, 2.0]) and not F._log_axis([0.0, 100.0])


def test_heatmap_spec():
    fig = F.heatmap("attn", [[1.0, 0.0], [0.5, 0.5], [None, float("nan")]], x=["a", "<b>"], x_label="key")
    trace = fig["data"][0]
    assert trace["type"] == "heatmap" and trace["z"][2] == [None, None]  # non-finite cells blank
    assert trace["x"] == ["a", "&lt;b&gt;"] and trace["y"] == [0, 1, 2]  # labels escaped; rows numbered
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"  # row 0 on top, as in a matrix
    assert fig["layout"]["xaxis"]["type"] == "category"
    assert F.n_points(fig) == 4
    go.Figure(fig)  # valid plotly
    assert F.heatmap("ragged", [[1.0], [1.0, 2.0]]) is None and F.heatmap("empty", []) is None
    nan = F.heatmap("nan", [[float("nan")]])
    assert F.Figures().embed(nan, empty="none") == '<p class="nodata">none</p>'
