"""The report in headless Chromium: no console error, no empty chart, every chart drawn.

Opened with ``?selfcheck``, the page draws every chart and writes
``<div id="report-selfcheck" data-errors data-empty-charts data-charts>`` (see
harness/report/assets.py), which ``--dump-dom`` hands back. Chromium's stderr carries
every console message as ``CONSOLE``; any such line fails the test too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_records import EXPECTED_FIGURES

from harness.report import render_report
from harness.report.render import page


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


pytestmark = pytest.mark.skipif(chromium() is None, reason="needs chromium (apt-get install chromium)")


def open_headless(path: Path, tmp: Path, query: str = "?selfcheck") -> tuple[dict[str, str], list[str]]:
    """(self-check attributes, console lines) of ``path`` loaded in headless Chromium."""
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        path.resolve().as_uri() + query,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    m = re.search(r'<div id="report-selfcheck"([^>]*)>', proc.stdout)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1))) if m else {}
    return attrs, console


def test_report_draws_every_chart_without_errors(report_case, tmp_path):
    out = render_report([report_case.main, report_case.foreign], out=report_case.out, runs_dir=report_case.runs_dir)
    check, console = open_headless(out, tmp_path)
    assert check, "the page's self-check did not run (no #report-selfcheck in the DOM)"
    assert check["data-errors"] == "0", check["data-error-text"]
    assert check["data-empty-charts"] == "0", check["data-empty-ids"]
    assert check["data-charts"] == str(EXPECTED_FIGURES)
    assert console == []
    # a plain load (charts drawn as they scroll into view) is quiet too
    check, console = open_headless(out, tmp_path, query="")
    assert check == {} and console == []


def test_no_runs_page_in_browser(tmp_path):
    out = render_report([], out=tmp_path / "index.html", runs_dir=tmp_path / "none")
    check, console = open_headless(out, tmp_path)
    assert (check["data-errors"], check["data-empty-charts"], check["data-charts"]) == ("0", "0", "0")
    assert console == []


def test_planted_faults_are_caught(tmp_path):
    """An empty chart, a script error and a network request each fail the self-check."""
    empty = {"data": [{"type": "bar", "x": [], "y": []}], "layout": {"title": {"text": "empty"}}}
    good = {"data": [{"type": "bar", "x": ["a"], "y": [1.0]}], "layout": {}}
    body = "".join(
        f'<div class="plot" id="fig-{i}"></div><script type="application/json" id="fig-{i}-spec">'
        f"{json.dumps(spec)}</script>"
        for i, spec in ((1, good), (2, empty))
    )
    body += '<img src="https://cdn.example.invalid/x.png" alt=""><script>undefinedFunction();</script>'
    bad = tmp_path / "bad.html"
    bad.write_text(page("planted", "faults", "", body, plotly=True, footer=""))
    check, console = open_headless(bad, tmp_path)
    assert check["data-charts"] == "2" and check["data-empty-charts"] == "1"
    assert check["data-empty-ids"] == "fig-2"
    assert int(check["data-errors"]) >= 2, check["data-error-text"]  # the exception and the blocked request
    assert "undefinedFunction" in check["data-error-text"] and "cdn.example.invalid" in check["data-error-text"]
    assert any("Uncaught" in ln for ln in console)
