"""Records written by the harness itself (runner + RunWriter), rendered: claims and check strength end to end."""

from __future__ import annotations

import html
import re

import pytest
from report_records import MATMUL

from harness.registry import REGISTRY
from harness.report import render_report


def n_figures(page: str) -> int:
    return len(re.findall(r'<div class="plot" id="fig-\d+"></div>', page))


def test_real_runner_record_renders(tmp_path):
    """A record written by the harness itself (runner + RunWriter), not by this test's builder."""
    from harness.fingerprint import fingerprint
    from harness.results import RunWriter
    from harness.runner import run_task

    w = RunWriter(
        mode="run",
        device="cpu",
        size="tiny",
        argv=["run"],
        fingerprint=fingerprint(),
        peak={"matmul_gflops": 100.0, "copy_gbps": 20.0},
        runs_dir=tmp_path / "runs",
    )
    w.add(
        run_task(
            REGISTRY.get(MATMUL),
            mode="bench",
            size="tiny",
            min_run_time_s=0.01,
            peak={"matmul_gflops": 100.0, "copy_gbps": 20.0},
        )
    )
    w.finish()
    page = render_report([w.path], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    assert f'<span class="tid">{MATMUL}</span>' in page and "torch_matmul (baseline)" in page
    assert "best vs" not in page  # the old headline across unlike variants is gone
    cls = REGISTRY.get(MATMUL)
    if cls.claims:  # the runner evaluated the task's claims: the headline is the first one
        head = re.search(r'<span class="head head-[^"]*">([^<]*)</span>', page).group(1)
        assert head.startswith(html.escape(cls.claims[0].text, quote=True))
        assert "no claim recorded" not in head
    assert n_figures(page) == 4  # summary, implementations, scaling over the 3 tiny configs, % of peak


def test_real_mutant_results_render_as_check_strength(tmp_path):
    """`drills check --mutants` through the runner, then the card's check strength."""
    from harness.fingerprint import fingerprint
    from harness.results import RunWriter
    from harness.runner import run_task

    cls = REGISTRY.get(MATMUL)
    if not cls.mutants:
        pytest.skip(f"{MATMUL} declares no mutants")
    w = RunWriter(
        mode="check",
        device="cpu",
        size="tiny",
        argv=["check", "--mutants"],
        fingerprint=fingerprint(),
        peak=None,
        runs_dir=tmp_path / "runs",
    )
    w.add(run_task(cls, mode="check", size="tiny", mutants=True))
    w.finish()
    page = render_report([w.path], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    n = len(cls.mutants)
    assert f"check strength: <b>caught {n} / declared {n}</b>" in page
    for m in cls.mutants:
        assert re.search(rf'<span class="mutant caught"[^>]*>{m.name}</span>', page)
