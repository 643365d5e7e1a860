"""Issue 10, nothing lost: unique run ids, sanitised entries, write failures mid-run (in process, fast)."""

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from harness import results
from harness.results import (
    ResultsError,
    RunWriter,
    check_writable_dir,
    check_writable_file,
    load_run,
    sanitise_entry,
)

FP = {"machine_id": "testbox-2c", "git": {"short": "abc12345"}}


def _writer(runs_dir, **kw):
    return RunWriter(mode="bench", device="cpu", size="cpu", argv=[], fingerprint=FP, peak={}, runs_dir=runs_dir, **kw)


def test_two_runs_started_in_the_same_second_get_two_files(tmp_path, monkeypatch):
    # the same second and even the same random suffix: the exclusive create still tells them apart
    monkeypatch.setattr(results.secrets, "token_hex", lambda n: "beef")
    writers = [_writer(tmp_path) for _ in range(3)]
    assert len({w._stamp for w in writers}) <= 2  # created within a second or two
    paths = {w.path for w in writers}
    assert len(paths) == 3 and all(p.exists() for p in paths)
    for i, w in enumerate(writers):
        w.add({"id": f"t.n{i}", "status": "pass"})
        w.finish()
    for i, w in enumerate(writers):
        assert list(load_run(w.path)["tasks"]) == [f"t.n{i}"]
        assert load_run(w.path)["run_id"] == w.path.stem


def test_nan_inf_and_tensors_in_a_table_are_sanitised_with_warnings(tmp_path):
    w = _writer(tmp_path)
    table = {
        "name": "t",
        "rows": [
            {"loss": float("nan"), "x": torch.tensor(2.5), "v": torch.tensor([1.0, float("inf")])},
            {"loss": np.float32(0.5), "n": np.int64(3), "obj": object(), "arr": np.arange(2)},
        ],
    }
    w.add({"id": "t.table", "status": "pass", "tables": [table], "metrics": {"final_loss": None, "ok": 1.0}})
    entry = load_run(w.path)["tasks"]["t.table"]
    r0, r1 = entry["tables"][0]["rows"]
    assert r0 == {"loss": None, "x": 2.5, "v": [1.0, None]}
    assert r1["loss"] == 0.5 and r1["n"] == 3 and r1["obj"].startswith("<object") and r1["arr"] == [0, 1]
    text = "\n".join(entry["warnings"])
    assert "tables[0].rows[0].loss: nan" in text and "rows[0].v[1]: inf" in text
    # a NaN metric (turned null when recorded) is not silent either
    assert "metrics.final_loss: not finite" in text


def test_sanitise_never_raises_on_odd_values():
    class Bad:
        def __str__(self):
            raise RuntimeError("no")

    out = sanitise_entry({"id": "a.b", "status": "pass", "notes": [Bad(), {1: (math.inf,)}]})
    json.dumps(out, allow_nan=False)
    assert out["notes"][0] == "<unprintable Bad>" and out["notes"][1] == {"1": [None]}


def test_write_failure_mid_run_falls_back_and_keeps_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(results.tempfile, "tempdir", str(tmp_path / "tmp"))
    said = []
    w = _writer(tmp_path / "runs", on_warning=said.append)
    first = w.path
    w.add({"id": "t.one", "status": "pass"})
    # the results folder becomes unusable (a file where the machine folder was)
    for p in first.parent.iterdir():
        p.unlink()
    first.parent.rmdir()
    first.parent.write_text("not a folder")
    w.add({"id": "t.two", "status": "pass"})  # must not raise: the run goes on
    assert w.path is not None and w.path != first and str(tmp_path / "tmp" / "drills-results") in str(w.path)
    assert len(said) == 1 and str(first) in said[0] and str(w.path) in said[0]
    w.add({"id": "t.three", "status": "pass"})
    w.finish()
    rec = load_run(w.path)
    assert list(rec["tasks"]) == ["t.one", "t.two", "t.three"] and rec["status"] == "complete"


def test_write_failure_everywhere_keeps_the_record_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(results.tempfile, "tempdir", str(blocker))  # the fallback lies under a file too
    w = _writer(tmp_path / "runs", on_warning=lambda m: None)
    os.unlink(w.path)
    w.path.parent.rmdir()
    w.path.parent.write_text("x")
    w.add({"id": "t.one", "status": "pass"})
    assert w.path is None and "kept in memory only" in w.problems[-1]
    w.add({"id": "t.two", "status": "pass"})  # still no exception
    assert list(w.data["tasks"]) == ["t.one", "t.two"]


def test_unwritable_results_dir_is_refused_before_anything_runs(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for bad, needle in ((f, "is a file"), (f / "sub", "a part of it is a file")):
        with pytest.raises(ResultsError, match=needle):
            check_writable_dir(bad, "--results-dir")
        with pytest.raises(ResultsError, match="cannot write the run record"):
            _writer(bad)
    with pytest.raises(ResultsError, match="is a folder"):
        check_writable_file(tmp_path, "--out")
    for under in (f / "index.html", f / "deeper" / "index.html"):
        with pytest.raises(ResultsError, match="lies under the file"):
            check_writable_file(under, "--out")
    assert check_writable_file(tmp_path / "new" / "index.html", "--out").parent.is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway; chmod proves nothing")
def test_read_only_folder_is_refused_for_a_non_root_user(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ResultsError, match="Permission denied"):
            check_writable_dir(ro, "--results-dir")
        with pytest.raises(ResultsError):
            check_writable_file(ro / "index.html", "--out")
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway; chmod proves nothing")
def test_results_folder_turning_read_only_mid_run_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(results.tempfile, "tempdir", str(tmp_path / "tmp"))
    w = _writer(tmp_path / "runs", on_warning=lambda m: None)
    first = w.path
    first.parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        w.add({"id": "t.one", "status": "pass"})
    finally:
        first.parent.chmod(0o755)
    assert w.path != first and "Permission denied" in w.problems[0]
    assert list(load_run(w.path)["tasks"]) == ["t.one"]
