"""Regressions found by trying the CLI as a new user (the trial of issue: newcomer pass)."""

from harness.cli import _mutants_summary


def test_mutants_summary_counts_caught_and_tasks_without_mutants():
    entries = [
        {"status": "pass", "mutants": [{"name": "a", "caught": True}, {"name": "b", "caught": True}]},
        {"status": "fail", "mutants": [{"name": "c", "caught": False}]},
        {"status": "pass", "mutants": []},
        {"status": "skip"},
    ]
    assert _mutants_summary(entries) == "mutants: 2 of 3 caught; 1 passing task(s) declare none"


def test_check_mutants_prints_check_strength(drills):
    """`drills check --mutants` used to print only `check: N pass`: no word on the mutants."""
    r = drills("check", "--task", "zz_planted.ok", "--mutants", "--no-isolate")
    assert r.returncode == 0, r.stderr
    assert "mutants: 0 of 0 caught; 1 passing task(s) declare none" in r.stdout


def test_peak_line_says_when_the_peak_was_measured_under_load():
    """The bench header printed a peak taken on a busy machine as if it were precise."""
    from harness.cli import _peak_note

    assert _peak_note({"matmul_gflops": 8.0, "copy_gbps": 1.7, "loaded": False}) == ""
    note = _peak_note({"matmul_gflops": 8.0, "copy_gbps": 1.7, "loaded": True, "load_avg_1m": 9.0})
    assert "under load 9.0" in note and "lower bound" in note


def test_report_out_refuses_an_existing_file_that_is_not_a_report(tmp_path):
    """`drills report RUN --out README.md` used to overwrite the README with the report."""
    import pytest

    from harness.cli import _check_report_out
    from harness.results import ResultsError

    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    with pytest.raises(ResultsError, match="exists and is not a torchdrills report"):
        _check_report_out(readme)
    assert readme.read_text() == "# my project\n"
    old = tmp_path / "index.html"
    old.write_text("<!DOCTYPE html><html><head><title>torchdrills report</title></head></html>")
    assert _check_report_out(old) == old  # an earlier report is replaced
    assert _check_report_out(tmp_path / "new.html") == tmp_path / "new.html"
    (tmp_path / "empty.html").write_text("")
    assert _check_report_out(tmp_path / "empty.html") == tmp_path / "empty.html"


def test_drills_report_out_readme_is_a_usage_error(drills, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# keep me\n")
    r = drills("report", "--out", str(readme))
    assert r.returncode == 2, r.stderr
    assert "is not a torchdrills report" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert readme.read_text() == "# keep me\n"


def test_argparse_errors_are_one_line():
    import subprocess
    import sys

    for argv in (["bench", "--min-run-time", "abc"], ["compare", "a.json"], ["bench", "--timing-mode", "bogus"]):
        res = subprocess.run(
            [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 2, res
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--help" in lines[0], res.stderr
