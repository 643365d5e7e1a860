"""Run records: atomic writes, validation naming the file, and noise-judged comparison."""

import json
import os

import pytest

from harness.compare import compare_runs, verdict
from harness.results import ResultsError, RunWriter, atomic_write_json, load_run


def _writer(tmp_path, **kw):
    fp = {"machine_id": "testbox-2c", "git": {"short": "abc12345"}}
    return RunWriter(mode="bench", device="cpu", size="cpu", argv=[], fingerprint=fp, peak={}, runs_dir=tmp_path, **kw)


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(ValueError):
        atomic_write_json(p, {"a": float("nan")})  # allow_nan=False: refused before the rename
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind
    assert oct(os.stat(p).st_mode & 0o777) != oct(0o600)


def test_writer_rewrites_after_every_task_and_validates(tmp_path):
    w = _writer(tmp_path)
    assert load_run(w.path)["status"] == "running"
    w.add({"id": "a.b", "status": "pass"})
    assert list(load_run(w.path)["tasks"]) == ["a.b"]
    w.finish()
    rec = load_run(w.path)
    assert rec["status"] == "complete" and rec["schema"] == 1
    assert w.path.parent.name == "testbox-2c" and w.path.name.endswith("_abc12345.json")


@pytest.mark.parametrize(
    "content,needle",
    [
        ("{", "not valid JSON"),
        ('{"kind": "other"}', "not a torchdrills run record"),
        ('{"kind": "torchdrills.run", "schema": 99}', "schema 99 is not supported"),
        ('{"kind": "torchdrills.run", "schema": 1, "run_id": "x", "fingerprint": {}}', "lacks the field 'tasks'"),
        (
            '{"kind": "torchdrills.run", "schema": 1, "run_id": "x", "fingerprint": {}, '
            '"tasks": {"a": {"status": "meh"}}}',
            "task 'a' has no valid status",
        ),
    ],
)
def test_load_run_names_the_file_and_the_problem(tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ResultsError) as e:
        load_run(p)
    assert "bad.json" in str(e.value) and needle in str(e.value)
    with pytest.raises(ResultsError, match="no such results file"):
        load_run(tmp_path / "missing.json")


def _m(median, iqr, impl="x"):
    return {"impl": impl, "config": "n=1", "dtype": "float32", "median_ms": median, "iqr_ms": iqr}


def test_verdict_is_judged_against_noise():
    assert verdict(_m(1.0, 0.01), _m(1.2, 0.01))[1] == "slower"
    assert verdict(_m(1.0, 0.01), _m(0.8, 0.01))[1] == "faster"
    assert verdict(_m(1.0, 0.01), _m(1.03, 0.01))[1] == "same"  # under the 5% floor
    assert verdict(_m(1.0, 0.2), _m(1.2, 0.2))[1] == "same"  # 20% change inside 20% IQRs


def test_compare_runs(tmp_path):
    a, b = _writer(tmp_path / "a"), _writer(tmp_path / "b")
    a.add({"id": "t.x", "status": "pass", "measurements": [_m(1.0, 0.01)]})
    b.add({"id": "t.x", "status": "fail", "measurements": [_m(2.0, 0.01)]})
    b.add({"id": "t.new", "status": "pass"})
    rows = compare_runs(a.path, b.path)
    changes = {(r["task"], r["change"]) for r in rows}
    assert (
        ("t.x", "slower") in changes and ("t.x", "status pass -> fail") in changes and ("t.new", "only in B") in changes
    )
