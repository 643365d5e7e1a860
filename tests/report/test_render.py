"""The HTML report: sections, cards, escaping, figure count, history, bad input, size."""

from __future__ import annotations

import html
import re
import time

import pytest
from plotly.offline import get_plotlyjs
from report_records import EXPECTED_FIGURES, MATMUL, XSS, main_tasks, matmul_task, meas, write_run

from harness.registry import REGISTRY
from harness.report import render_report
from harness.report.render import default_out
from harness.results import ResultsError


def strip_bundle(page: str) -> str:
    """The page without plotly.js (whose default config names a CDN URL it never fetches here)."""
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1, "plotly.js must be inlined exactly once"
    return page.replace(bundle, "")


def n_figures(page: str) -> int:
    return len(re.findall(r'<div class="plot" id="fig-\d+"></div>', page))


@pytest.fixture
def page(report_case) -> str:
    out = render_report([report_case.main, report_case.foreign], out=report_case.out, runs_dir=report_case.runs_dir)
    assert out == report_case.out
    return out.read_text()


def test_sections_cards_and_figure_count(page):
    for sid in ("summary", "tasks", "history", "environment"):
        assert f'<section id="{sid}">' in page
    for tid in main_tasks():
        assert f'<span class="tid">{tid}</span>' in page
    assert n_figures(page) == EXPECTED_FIGURES
    assert page.count('type="application/json"') == EXPECTED_FIGURES
    # cards in catalogue area order, then seed order within an area
    order = [
        page.index(f'id="task-{t.replace(".", "-")}"')
        for t in (
            MATMUL,
            "fundamentals.cpu_vs_gpu_speed",
            "autograd.bad_grad",
            "nn_basics.fake_train",
            "cnn.crashes",
            "cnn.pictures",
            "research.all_nan",
            "m4.triton_matmul",
        )
    ]
    assert order == sorted(order)


def test_offline_and_self_contained(page):
    rest = strip_bundle(page)
    assert "cdn" not in rest.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest), "no external script, style or font"
    assert "Content-Security-Policy" in rest and "default-src 'none'" in rest


def test_all_text_is_escaped(page):
    rest = strip_bundle(page)
    assert XSS not in rest and "<b>bold</b>" not in rest
    assert html.escape(XSS) in rest  # title and note, escaped
    assert "max abs err 0.5 &gt; atol &amp; rtol &lt;tensor&gt;" in rest  # fail reason and check message
    assert "RuntimeError: shape &lt;1, 2&gt; &amp; &lt;3&gt;" in rest and "in &lt;module&gt;" in rest
    assert "Test CPU &lt;v2&gt;" in rest  # the environment too


def test_card_contents(page):
    lesson = REGISTRY.get(MATMUL).lesson()
    first = lesson.split("\n\n")[0].replace("\n", " ").strip()  # the first paragraph, rendered by docutils
    assert "<p>" + html.escape(first, quote=True).replace("@", "&#64;") in page.replace("\n", " ")
    for col in ("max abs err", "max rel err", "rtol", "atol"):
        assert f"<th>{col}</th>" in page
    assert "1.3e-06" in page and "7.6e-06" in page  # tolerance and error of a check
    assert "torch_matmul (baseline)" in page and "speedup_vs_baseline" in page
    assert "pct_peak_flops (%)" in page  # the % of peak chart
    assert "timing of cuda" in page and "needs cuda" in page  # skipped part with its reason
    assert "confusion (first rows)" in page and "final_loss" in page  # ctx.table and ctx.metric
    assert "NOISY" in page and "noisy measurement" in page
    assert "Curve &#x27;empty&#x27; has no finite points." in page
    assert 'data-status="fail"' in page and 'data-status="error"' in page and 'data-status="skip"' in page


def test_summary_counts_and_coverage(page):
    counts = re.search(r'<table class="counts">.*?</table>', page).group(0)
    assert re.search(r"<b>all</b></td>" + r'<td class="num">(\d+)</td>' * 5, counts).groups() == (
        "5",
        "1",
        "1",
        "1",
        "8",
    )
    # coverage against the catalogue shipped in the package: 132 rows; of the run's ids only
    # manual_matmul, cpu_vs_gpu_speed and m4.triton_matmul are catalogue rows (the others are planted)
    n = len(REGISTRY.all())
    assert f"<b>{n} of 132</b> catalogue tasks registered; <b>3</b> ran in this run" in page


def test_history_and_regressions(page, report_case):
    hist = page[page.index('<section id="history">') : page.index('<section id="environment">')]
    assert "3 run(s) of machine test-cpu-2c" in hist
    # loop got 1.5x slower (IQR 1%: threshold 5%): a regression against the previous run
    row = re.search(r'<tr class="ch-slower"><td>fundamentals.manual_matmul</td><td>loop</td>.*?</tr>', hist)
    assert row and "20260102T000000Z_bbbb2222" in row.group(0) and ">1.5<" in row.group(0)
    assert "2 slower, 0 faster, 6 within noise, 1 contended (not judged)" in hist
    # the contended loop at n=128 (1.5x slower too) is listed but never called a regression
    assert re.search(r'<tr class="ch-contended"><td>fundamentals.manual_matmul</td><td>loop</td><td>m=128', hist)
    assert "other-gpu" in hist and "another machine" in hist  # the foreign run is named, not mixed in
    assert "20260101T120000Z_broken00.json: not valid JSON" in hist  # a bad file in the history is noted


def test_newest_given_run_is_the_main_one(report_case):
    out = render_report([report_case.main, *report_case.older], out=report_case.out, runs_dir=report_case.runs_dir)
    assert "run 20260103T000000Z_cccc3333" in out.read_text()
    out = render_report(
        list(reversed([report_case.main, *report_case.older])), out=report_case.out, runs_dir=report_case.runs_dir
    )
    assert "run 20260103T000000Z_cccc3333" in out.read_text()


def test_single_run_history_says_so(tmp_path):
    p = write_run(tmp_path / "runs", "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {MATMUL: matmul_task()})
    page = render_report([p], out=tmp_path / "r.html", runs_dir=tmp_path / "runs").read_text()
    assert "History needs at least two runs" in page
    assert n_figures(page) == 1 + 3


def test_no_runs_page(tmp_path):
    out = render_report([], out=tmp_path / "new" / "dir" / "index.html", runs_dir=tmp_path / "none")
    page = out.read_text()
    assert "No runs found" in page and "drills run" in page
    assert n_figures(page) == 0 and get_plotlyjs()[:200] not in page  # nothing to draw: no 4.8 MB bundle


@pytest.mark.parametrize(
    "content, match",
    [
        ("{oops", "not valid JSON"),
        ('{"kind": "other"}', "not a torchdrills run"),
        ('{"kind": "torchdrills.run", "schema": 99}', "schema 99"),
    ],
)
def test_malformed_or_foreign_file_raises_naming_it(tmp_path, content, match):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ResultsError, match=match) as e:
        render_report([bad], out=tmp_path / "r.html", runs_dir=tmp_path)
    assert str(bad) in str(e.value)
    assert not (tmp_path / "r.html").exists()


def test_write_is_atomic_and_overwrites(tmp_path, report_case):
    report_case.out.parent.mkdir(parents=True)
    report_case.out.write_text("old")
    render_report([report_case.main], out=report_case.out, runs_dir=report_case.runs_dir)
    assert report_case.out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in report_case.out.parent.iterdir()] == ["index.html"]  # no temp file left
    assert default_out().parts[-2:] == ("reports", "index.html")


def test_coverage_lists_missing_rows_with_seed_and_title(page):
    from harness.catalogue import load

    missing = [e for e in load().entries if e.id not in REGISTRY]
    if not missing:
        pytest.skip("every catalogue row is registered")
    assert f"{len(missing)} catalogue tasks not registered yet" in page
    e = missing[0]
    assert f'<span title="{html.escape(e.title)}">{e.seed} {e.id}</span>' in page


def big_run(n_tasks: int = 130, n_impls: int = 4, n_configs: int = 5) -> dict:
    areas = [
        "fundamentals",
        "autograd",
        "nn_basics",
        "cnn",
        "rnn",
        "transformers",
        "gans",
        "advanced",
        "deployment",
        "research",
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
    ]
    tasks = {}
    for i in range(n_tasks):
        area = areas[i % len(areas)]
        tid = f"{area}.task_{i:03d}"
        rows = [
            meas(
                f"impl{j}",
                f"n={2 ** (8 + c)}",
                0.01 * (j + 1) * 2**c,
                flops=2.0 * 8 ** (8 + c),
                nbytes=4.0 * 2 ** (8 + c),
            )
            | {"samples_ms": [0.01] * 30}
            for c in range(n_configs)
            for j in range(n_impls)
        ]
        tasks[tid] = {
            "id": tid,
            "status": ("pass", "fail", "skip", "error")[i % 4],
            "area": area,
            "seed": f"{i // 13 + 1}.{i % 13 + 1:02d}",
            "title": f"task {i}",
            "kind": "operator",
            "reason": "" if i % 4 == 0 else "why " * 10,
            "measurements": rows,
            "checks": [
                {
                    "name": f"impl{j}",
                    "passed": True,
                    "n": 3,
                    "max_abs_err": 1e-6,
                    "max_rel_err": 1e-5,
                    "rtol": 1e-5,
                    "atol": 1e-6,
                }
                for j in range(n_impls)
            ],
            "curves": [
                {
                    "name": "loss",
                    "series": "train",
                    "x_label": "step",
                    "y_label": "loss",
                    "x": list(range(200)),
                    "y": [1.0 / (k + 1) for k in range(200)],
                }
            ],
        }
    return tasks


def test_many_tasks_render_fast_and_light(tmp_path):
    runs = tmp_path / "runs"
    first = write_run(runs, "20260101T000000Z_c0000001", "2026-01-01T00:00:00Z", big_run())
    text = first.read_text()
    for d in range(2, 6):  # four more runs of the same record: the history reads and charts them all
        rid = f"202601{d:02d}T000000Z_c{d:07d}"
        (runs / first.parent.name / f"{rid}.json").write_text(text.replace("20260101T000000Z_c0000001", rid))
    t0 = time.perf_counter()
    out = render_report([runs / first.parent.name / f"{rid}.json"], out=tmp_path / "r.html", runs_dir=runs)
    took = time.perf_counter() - t0
    size_mb = out.stat().st_size / 1e6
    page = out.read_text()
    print(
        f"130 tasks x 4 impls x 5 configs, 5 runs of history: {took:.2f} s, {size_mb:.1f} MB, {n_figures(page)} charts"
    )
    assert n_figures(page) == 1 + 130 * 4 + 130  # summary; per task impls, scaling, % of peak, curve; history
    assert size_mb < 15  # the page's weight is a property; its render time is printed, never asserted
