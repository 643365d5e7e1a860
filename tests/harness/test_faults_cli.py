"""Issue 10: every user mistake is one line naming the problem and the fix, exit 2, before any task runs.

In process (``harness.cli.main``) where no planted task is needed; the option checks come
before the registry is read.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from harness import cli
from harness.fingerprint import machine_id


@pytest.fixture
def drills(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILLS_RESULTS_DIR", str(tmp_path / "runs"))

    def run(*args):
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _one_line_usage_error(res, needle):
    code, out, err = res
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err


@pytest.mark.parametrize(
    "args,needle",
    [
        (("check", "--time-limit", "nan"), "--time-limit nan: must be a positive number of seconds"),
        (("check", "--time-limit", "0"), "--time-limit 0.0: must be a positive"),
        (("run", "--time-limit", "-5"), "--time-limit -5.0: must be a positive"),
        (("bench", "--min-run-time", "-1"), "--min-run-time -1.0: must be a positive"),
        (("bench", "--min-run-time", "nan"), "--min-run-time nan: must be a positive"),
        (("bench", "--device", "cpu", "--timing-mode", "graph"), "--timing-mode graph needs a CUDA device"),
        (("run", "--device", "cpu", "--timing-mode", "cold"), "--timing-mode cold needs a CUDA device"),
        (("check", "--device", "cpu:1"), "the CPU is one device (cpu), it takes no index"),
        (("check", "--device", ""), "empty device; valid: auto, cpu, cuda, cuda:N"),
        (("env", "--device", ""), "empty device"),
    ],
)
def test_nonsense_option_values_are_refused(drills, args, needle):
    _one_line_usage_error(drills(*args), needle)


def test_unwritable_out_and_results_dir_are_refused_before_any_task_runs(drills, tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    _one_line_usage_error(drills("run", "--out", f / "index.html"), "lies under the file")
    _one_line_usage_error(drills("run", "--out", tmp_path), "is a folder; give a file name")
    _one_line_usage_error(drills("check", "--save", "--results-dir", f), "--results-dir")
    _one_line_usage_error(drills("bench", "--results-dir", f / "sub"), "cannot write there")
    _one_line_usage_error(drills("report", "--out", tmp_path), "is a folder")
    _one_line_usage_error(drills("report", "--out", f / "r.html"), "lies under the file")
    assert not (tmp_path / "runs").exists()  # nothing ran, no record was started


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway; chmod proves nothing")
def test_read_only_out_folder_is_refused_for_a_non_root_user(drills, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _one_line_usage_error(drills("run", "--out", ro / "index.html"), "Permission denied")
        _one_line_usage_error(drills("check", "--save", "--results-dir", ro), "Permission denied")
    finally:
        ro.chmod(0o755)


def test_compare_the_same_file_twice(drills, tmp_path):
    p = tmp_path / "a.json"
    p.write_text("{}")
    _one_line_usage_error(drills("compare", p, p), "are the same file")
    _one_line_usage_error(drills("compare", p, tmp_path / "." / "a.json"), "are the same file")


def test_data_list_on_a_folder_without_the_data_sets(drills, tmp_path):
    code, out, err = drills("data", "list", "--data-dir", tmp_path)
    assert code == 0 and "Traceback" not in err
    assert f"drills data fetch mnist --data-dir {tmp_path}" in out
    assert "missing from" in out and "mnist" in out and "digits" in out
    _one_line_usage_error(drills("data", "list", "--data-dir", tmp_path / "nope"), "no such folder")


def _rec(run_id, mode, status="complete"):
    return {
        "schema": 1,
        "kind": "torchdrills.run",
        "run_id": run_id,
        "started_utc": run_id[:8],
        "status": status,
        "mode": mode,
        "device": "cpu",
        "fingerprint": {"machine_id": machine_id(), "gpus": []},
        "tasks": {"t.x": {"id": "t.x", "status": "pass", "area": "t"}},
    }


def test_report_without_arguments_uses_the_newest_complete_run_and_says_which(drills, tmp_path):
    folder = tmp_path / "runs" / machine_id()
    folder.mkdir(parents=True)
    for run_id, mode, status in (
        ("20260101T000000Z-1_a", "run", "complete"),
        ("20260102T000000Z-1_a", "check", "complete"),  # a one-task check afterwards
        ("20260103T000000Z-1_a", "bench", "interrupted"),
    ):
        (folder / f"{run_id}.json").write_text(json.dumps(_rec(run_id, mode, status)))
    (folder / "20260104T000000Z-1_a.json").write_bytes(bytes(range(256)))  # a stray binary file
    code, out, err = drills("report", "--out", tmp_path / "r.html", "--results-dir", tmp_path / "runs")
    assert code == 0, err
    assert "20260101T000000Z-1_a.json" in out and "newest complete run or bench" in out
    assert "20260104T000000Z-1_a.json" in err and "warning" in err  # skipped with one line
    assert "run 20260101T000000Z-1_a" in (tmp_path / "r.html").read_text()


def test_glob_outside_the_area(drills):
    _one_line_usage_error(
        drills("list", "--area", "fundamentals", "--task", "cnn.*"), "no task of area fundamentals matches 'cnn.*'"
    )


def test_every_subcommand_has_a_description_and_shows_defaults():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert p.description, name
    text = " ".join(sub.choices["bench"].format_help().split())
    assert "180 s for check, 600 s for bench, 780 s for run" in text
    assert "need a CUDA device (default: auto)" in text and "(default: 0.5)" in text
    assert "(default: table)" in " ".join(sub.choices["compare"].format_help().split())


def test_status_column_is_padded_as_text():
    lines = [cli._status_line(s, "a.task", 1.0, "why [/] not markup") for s in ("pass", "fail", "skip", "error")]
    assert {ln.plain.index("a.task") for ln in lines} == {9}
    assert lines[1].plain.endswith("why [/] not markup")


def test_env_prints_install_hints_with_brackets(drills, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 400)
    code, out, _ = drills("env", "--device", "cpu")
    assert code == 0 and "pip install 'torchdrills[triton]'" in out and "'torchdrills[cpp]'" in out


BROKEN = """
    import torch
    from harness import Comparison, task

    @task("zz2broken.thing", seed="1.01", title="a digit in the area")
    class Thing(Comparison):
        sizes = {"tiny": None}
        variants = ("a",)
"""


def test_a_task_file_that_failed_to_import_is_named(tmp_path):
    (tmp_path / "zz_broken").mkdir()
    (tmp_path / "zz_broken" / "thing.py").write_text(textwrap.dedent(BROKEN))
    env = {**os.environ, "DRILLS_TASKS_DIR": str(tmp_path), "DRILLS_RESULTS_DIR": str(tmp_path / "runs")}
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--task", "zz2broken.thing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "unknown task" not in r.stderr, r.stderr
    assert f"task file {tmp_path / 'zz_broken' / 'thing.py'} failed to import: " in r.stderr
    assert "RegistryError: task id 'zz2broken.thing' is not of the form area.slug" in r.stderr
    # the id rule is stated right: no digits in the area
    assert "area: lowercase letters and _, or m1-m6; slug: lowercase letters, digits and _" in r.stderr


def test_run_no_save_renders_the_report_from_memory(planted_dir, tmp_path):
    env = {**os.environ, "DRILLS_TASKS_DIR": str(planted_dir), "DRILLS_RESULTS_DIR": str(tmp_path / "runs")}
    out = tmp_path / "report" / "index.html"
    args = ["run", "--task", "zz_planted.ok", "--no-save", "--no-isolate", "--min-run-time", "0.02", "--out", out]
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)], env=env, capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "from the in-memory record: --no-save" in r.stdout and out.is_file()
    assert "zz_planted.ok" in out.read_text()
    assert not (tmp_path / "runs").exists()  # nothing saved


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_check_without_a_gpu_suggests_no_missing_option(drills, tmp_path):
    code, out, err = drills("gpu-check", "--results-dir", tmp_path / "gpu")
    _one_line_usage_error((code, out, err), "needs a CUDA GPU")
    assert "--device" not in err
