"""What the report says about a task: lessons as text, claims, check strength, pictures, flags, timer self-test."""

from __future__ import annotations

import json
import re
import sys
import types
from types import SimpleNamespace

import pytest
from report_records import (
    MACHINE,
    MACHINE_LABEL,
    MATMUL,
    XSS,
    digit_png,
    gradient_png,
    matmul_task,
    meas,
    write_run,
)

from harness.report import render_report
from harness.report import verdicts as V
from harness.report.html import esc
from harness.report.pictures import display_size
from harness.report.rst import render_rst


@pytest.fixture
def page(report_case) -> str:
    return render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir).read_text()


def card_of(page: str, tid: str) -> str:
    start = page.index(f'id="task-{tid.replace(".", "-")}"')
    end = page.find('<details class="card"', start + 1)
    return page[start : end if end > 0 else page.index('<section id="history">')]


# -- lessons --------------------------------------------------------------------------------------


def test_lesson_is_formatted_text_not_a_preformatted_block():
    html = render_rst("Compared: ``torch.matmul`` and *loop*.\n\n* one\n* two ``a < b``\n\nLast paragraph & more.")
    assert '<span class="docutils literal">torch.matmul</span>' in html
    assert "<ul" in html and "<li><p>one</p></li>" in html and "a &lt; b" in html
    assert html.count("<p>") >= 3 and "<pre" not in html and "Last paragraph &amp; more." in html
    sphinx = render_rst("see :class:`TanhMSE` and :func:`~harness.report.rst.render_rst`")
    assert '<span class="docutils literal">TanhMSE</span>' in sphinx and ">render_rst<" in sphinx


def test_plain_text_habits_read_as_laid_out():
    text = (
        "Checked:\n* seeded: same seed, same crops; another seed\n  gives others;\n* flips\n\n"
        "Update rule:\n\n    b <- momentum b + g\n    p <- p - lr b\n\nThen::\n\n    already literal\n\n"
        "* item\n\n  item body, indented\n"
    )
    html = render_rst(text)
    assert "<li><p>seeded: same seed, same crops; another seed\ngives others;</p></li>" in html  # a real list
    assert '<pre class="literal-block">b &lt;- momentum b + g\np &lt;- p - lr b</pre>' in html  # lines kept
    assert '<pre class="literal-block">already literal</pre>' in html and "::" not in html
    assert "<p>item body, indented</p>" in html and "<blockquote>" not in html  # list bodies stay prose


@pytest.mark.parametrize(
    "broken",
    [
        "a ref_ to nowhere and `x`_ too",
        "an *unclosed emphasis",
        ".. unknown-directive:: x\n\ntext",
        ".. raw:: html\n\n   <script>alert(1)</script>",
        ".. include:: /etc/passwd",
        "Title\n=====\n\nbody\n\nTitle\n=====\n\nagain",
    ],
)
def test_lesson_never_shows_system_messages_or_raw_html(broken):
    html = render_rst(broken)
    assert "system-message" not in html and "System Message" not in html and "problematic" not in html
    assert "<script>" not in html and "root:" not in html


def test_lesson_falls_back_to_escaped_pre_when_docutils_raises(monkeypatch):
    import docutils.core

    def boom(*a, **k):
        raise RuntimeError("docutils broke")

    monkeypatch.setattr(docutils.core, "publish_parts", boom)
    assert render_rst("x < y ``z``") == '<pre class="lesson-pre">x &lt; y ``z``</pre>'


def test_registered_lesson_renders_as_html(page):
    card = card_of(page, MATMUL)
    lesson = re.search(r'<div class="lesson">(.*?)</div>', card, re.S).group(1)
    assert '<span class="docutils literal">torch.matmul</span>' in lesson and "<p>" in lesson


# -- claims ---------------------------------------------------------------------------------------


def test_card_shows_every_claim_with_value_verdict_why_and_machine(page):
    card = card_of(page, MATMUL)
    claims = re.search(r"<h4>claims</h4>(.*?)</table>", card, re.S).group(1)
    assert claims.count("<tr") == 1 + 3  # header + three claims
    assert "blocked within 8x of torch.matmul" in claims and "4x (needs &lt;= 8x)" in claims
    assert '<span class="ok">holds</span>' in claims
    assert '<span class="bad">does not hold</span>' in claims and "500x (needs &lt;= 100x)" in claims
    assert '<span class="muted">not measured</span>' in claims and "a cuda claim; this run was on cpu" in claims
    assert "— (needs &gt;= 2x)" in claims
    assert claims.count(esc(MACHINE_LABEL)) == 3


def test_headline_is_the_first_claim_never_best_vs_baseline(page):
    head = re.search(r'<span class="head ([^"]*)">([^<]*)</span>', card_of(page, MATMUL))
    assert head.groups() == ("head-holds", "blocked within 8x of torch.matmul: 4x, holds")
    assert "best vs" not in page
    # a record without claims (older schema) says so instead of inventing a headline
    assert '<span class="head head-none">no claim recorded</span>' in card_of(page, "nn_basics.fake_train")


def test_summary_lists_all_claims_of_the_run(page):
    summary = page[page.index('<section id="summary">') : page.index('<section id="tasks">')]
    assert f"claims measured on <b>{esc(MACHINE_LABEL)}</b>" in summary
    assert '<span class="ok">2 hold</span>' in summary and '<span class="bad">1 do not hold</span>' in summary
    assert "1 not measured" in summary and "6 task(s) with no claim recorded" in summary
    table = re.search(r"<h3>claims</h3>.*?</table>", summary, re.S).group(0)
    assert table.count("<tr") == 1 + 4 and '<a href="#task-cnn-pictures">cnn.pictures</a>' in table


def test_old_record_without_claims_lists_the_declared_ones():
    cls = SimpleNamespace(claims=[SimpleNamespace(text="KV cache >= 3x")], mutants=())
    html = V.claims_html({"id": "x.y", "status": "pass"}, cls, "m")
    assert "no claim recorded in this run record" in html and "<li>KV cache &gt;= 3x</li>" in html
    assert "no claim recorded: this task states no claim yet" in V.claims_html({"status": "pass"}, None, "m")


# -- check strength -------------------------------------------------------------------------------


def test_card_shows_check_strength_with_caught_and_survivors(page):
    card = card_of(page, "cnn.pictures")
    assert "check strength: <b>caught 1 / declared 1</b>" in card
    assert '<span class="mutant caught" title="keeps negative evidence | caught: map differs">no_relu</span>' in card
    card = card_of(page, MATMUL)
    assert re.search(r"check strength: <b>caught 2 / declared \d+</b>", card)
    assert re.search(r'<span class="mutant survived"[^>]*>fp16_accumulate</span>', card)
    assert re.search(r'<span class="mutant caught"[^>]*>transposed_b</span>', card)


def test_strength_without_results_says_not_run():
    cls = SimpleNamespace(claims=(), mutants=[SimpleNamespace(name="a", what="x"), SimpleNamespace(name="b", what="y")])
    html = V.strength_html({"status": "pass"}, cls)
    assert "declared 2, not run (<code>drills check --mutants</code>): a, b" in html
    assert "nothing shows that this check can fail" in V.strength_html({"status": "pass"}, None)
    ran = V.strength({"mutants": [{"name": "a", "caught": True}]}, cls)
    assert (ran["declared"], ran["ran"], ran["caught"], ran["not_run"]) == (2, 1, 1, ["b"])


def test_summary_shows_strength_per_area(page):
    summary = page[page.index('<section id="summary">') : page.index('<section id="tasks">')]
    table = re.search(r"<h3>check strength by area</h3>.*?</table>", summary, re.S).group(0)
    row = re.search(r'<tr><td><a href="#area-cnn">cnn</a></td>.*?</tr>', table).group(0)
    assert ">1 / 1<" in row  # cnn.pictures caught its one mutant; cnn.crashes has none
    fund = re.search(r'<tr><td><a href="#area-fundamentals">.*?</tr>', table).group(0)
    assert "fundamentals.manual_matmul:fp16_accumulate" in fund and 'class="bad"' in fund
    assert re.search(r'<a href="#area-autograd">autograd</a>.*?declared 0, not run', table)


# -- pictures -------------------------------------------------------------------------------------


def test_images_are_inline_pngs_scaled_up_pixelated_with_captions(page):
    card = card_of(page, "cnn.pictures")
    digit = re.search(r'<img class="pic pixelated" src="data:image/png;base64,([^"]+)" alt="digit"([^>]*)>', card)
    assert digit and digit.group(1) == digit_png()["png_b64"]
    assert 'width="256" height="256"' in digit.group(2)  # 8x8 scaled 32x
    assert re.search(r'alt="overlay" width="256" height="192"', card)  # 32x24 scaled 8x
    assert esc(XSS) in card and XSS not in card  # captions are escaped
    assert "image-rendering:pixelated" in page
    assert display_size(300, 100) == (300, 100) and display_size(100, 50) == (200, 100)


def test_heatmap_is_a_plotly_heatmap(page):
    card = card_of(page, "cnn.pictures")
    spec = json.loads(re.search(r'<script type="application/json" id="fig-\d+-spec">(.*?)</script>', card).group(1))
    trace = spec["data"][0]
    assert trace["type"] == "heatmap" and len(trace["z"]) == 5 and trace["x"][2] == "&lt;sat&gt;"
    assert "layer 0, head 0: causal" in card


def test_bad_pictures_are_named_not_dropped(tmp_path):
    bad = [
        {**digit_png(), "name": "broken", "png_b64": 'not base64 at all"><script>'},
        {"name": "mystery", "kind": "video"},
        {**gradient_png(), "width": None},
    ]
    task = {"id": "cnn.bad_pics", "status": "pass", "area": "cnn", "seed": "4.05", "images": bad}
    p = write_run(tmp_path / "runs", "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {task["id"]: task})
    page = render_report([p], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    assert "picture &#x27;broken&#x27;: the record holds no valid base64 PNG." in page and '<script>"' not in page
    assert "picture &#x27;mystery&#x27; has kind &#x27;video&#x27;" in page
    assert 'alt="overlay">' in page  # no size known: shown at its own size


# -- measurement flags ----------------------------------------------------------------------------


def test_contended_and_suspect_rows_are_flagged_old_rows_render_as_before(page, tmp_path):
    card = card_of(page, MATMUL)
    meas_table = re.search(r'<table class="meas">.*?</table>', card, re.S).group(0)
    for col in ("n_preempted", "cpu_wall_ratio", "contended", "pct_peak_suspect"):
        assert f"<th>{col}</th>" in meas_table
    busy = re.findall(r'<tr class="contendedrow">(.*?)</tr>', meas_table)
    assert len(busy) == 1 and "CONTENDED" in busy[0] and ">0.41<" in busy[0]
    assert meas_table.count("SUSPECT") == 1 and meas_table.count("NOISY") == 1
    assert "1 of 9 measurements are CONTENDED" in card and "more than 100 % of the measured peak" in card
    specs = [json.loads(x) for x in re.findall(r'id="fig-\d+-spec">(.*?)</script>', card)]
    pct = next(sp for sp in specs if sp["layout"]["title"]["text"].startswith("% of"))
    marks = {tr["name"]: tr["text"] for tr in pct["data"]}
    assert marks["torch_matmul"] == ["", "", "suspect"] and marks["loop"] == ["", "", ""]
    # a record of the older schema: no new columns, no new flags
    p = write_run(tmp_path / "runs", "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {MATMUL: matmul_task()})
    old = render_report([p], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    old_table = re.search(r'<table class="meas">.*?</table>', old, re.S).group(0)
    assert "contended" not in old_table and "n_preempted" not in old_table and "CONTENDED" not in old
    assert "noisyrow" in old_table and "fewer than 5 samples" not in old  # 5 samples each: nothing to say
    few = matmul_task()
    few["measurements"][0]["n_samples"] = 2
    p = write_run(tmp_path / "runs", "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {MATMUL: few})
    old = render_report([p], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    assert "1 of 9 measurements have fewer than 5 samples and no contention data" in old


def test_waiting_rows_are_explained(tmp_path):
    row = meas("server", "clients=4", 2.0, waits=True, cpu_wall_ratio=0.1, contended=False, n_preempted=0)
    task = {"id": "deployment.fake_server", "status": "pass", "area": "deployment", "measurements": [row]}
    p = write_run(tmp_path / "runs", "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {task["id"]: task})
    page = render_report([p], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    assert "waits by design" in page and "judged by CPU pressure" in page and "CONTENDED" not in page


# -- timer self-test ------------------------------------------------------------------------------


def test_environment_shows_the_timer_self_test(report_case, monkeypatch):
    check_dir = report_case.runs_dir.parent / "timer_check" / MACHINE
    page = render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir).read_text()
    assert "timer self-test not run (drills timer-check)" in page
    check_dir.mkdir(parents=True)
    (check_dir / "20260103T000000Z_cccc3333.json").write_text(json.dumps({"summary": {"quiet_ratio": 1.01}}))
    fake = types.ModuleType("harness.timer_check")
    fake.timer_check_summary = lambda rec: [
        {"figure": "quiet ratio", "value": f"{rec['summary']['quiet_ratio']:.3f}", "target": "within 3%", "met": True}
    ]
    monkeypatch.setitem(sys.modules, "harness.timer_check", fake)
    page = render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir).read_text()
    env = page[page.index('<section id="environment">') :]
    assert "<h3>timer self-test</h3>" in env and "20260103T000000Z_cccc3333.json" in env
    assert "<td>quiet ratio</td><td>1.010</td><td>within 3%</td><td>yes</td>" in env
    monkeypatch.setitem(sys.modules, "harness.timer_check", None)  # the module absent: import fails
    page = render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir).read_text()
    assert "timer self-test not run (drills timer-check): this version has no timer self-test" in page
