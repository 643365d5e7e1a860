"""Issue 10, results files trusted too far: every file is checked against harness/record_schema.py."""

import json

import pytest

from harness.results import ResultsError, RunWriter, find_runs, load_run, newest_full_run

FP = {"machine_id": "testbox-2c", "git": {"short": "abc12345"}, "gpus": []}


def _record(**over):
    m = {"impl": "a", "config": "n=1", "dtype": "float32", "median_ms": 1.0, "iqr_ms": 0.01}
    rec = {
        "schema": 1,
        "kind": "torchdrills.run",
        "run_id": "r1",
        "status": "complete",
        "mode": "bench",
        "fingerprint": dict(FP),
        "tasks": {"t.x": {"id": "t.x", "status": "pass", "measurements": [m]}},
    }
    rec.update(over)
    return rec


def _write(tmp_path, data, name="bad.json"):
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def _task(**over):
    return {"tasks": {"t.x": {"id": "t.x", "status": "pass", **over}}}


def _median(v):
    return _task(measurements=[{"impl": "a", "median_ms": v}])


@pytest.mark.parametrize(
    "content,needle",
    [
        (bytes(range(256)) * 4, "binary"),
        ('{"kind": "torchdrills.run"}'.encode("utf-16"), "UTF-16"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (_record(**_task(measurements="oops")), "field tasks.t.x.measurements: 'oops' is not of type 'array'"),
        (
            _record(fingerprint={**FP, "gpus": ["H100", "A100"]}),
            "field fingerprint.gpus[1]: 'A100' is not of type 'object'",
        ),
        (_record(**_task(measurements=[{"median_ms": 1.0}])), "lacks the field 'impl'"),
        (_record(**_task(measurements=[{"impl": "a"}])), "lacks the field 'median_ms'"),
        (_record(**_median(0)), "field tasks.t.x.measurements[0].median_ms: 0 is less than or equal to"),
        (_record(**_median(-2.5)), "measurements[0].median_ms: -2.5 is less than or equal to the minimum of 0"),
        (_record(tasks="oops"), "field tasks: 'oops' is not of type 'object'"),
        (_record(status="done"), "field status: 'done' is not one of"),
    ],
    ids=[
        "binary",
        "utf16",
        "nested",
        "measurements-str",
        "gpus-str",
        "no-impl",
        "no-median",
        "zero",
        "negative",
        "tasks-str",
        "status",
    ],
)
def test_bad_files_are_one_line_errors_naming_file_and_field(tmp_path, content, needle):
    p = _write(tmp_path, content)
    with pytest.raises(ResultsError) as e:
        load_run(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and needle in msg and "\n" not in msg and len(msg) < 400, msg


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_medians_are_refused_naming_the_field(tmp_path, token):
    text = json.dumps(_record()).replace('"median_ms": 1.0', f'"median_ms": {token}')
    with pytest.raises(ResultsError, match=r"field tasks\.t\.x\.measurements\[0\]\.median_ms is NaN or Infinity"):
        load_run(_write(tmp_path, text))


def test_new_optional_fields_are_allowed(tmp_path):
    rec = _record()
    m = rec["tasks"]["t.x"]["measurements"][0]
    m.update(n_preempted=2, cpu_wall_ratio=0.9, contended=True, waits={"runq_ms": 1.0})
    rec["tasks"]["t.x"].update(claims=[{"text": "x", "ok": True}], mutants=[], images=[], something_new={"a": 1})
    rec["future_field"] = [1, 2]
    assert load_run(_write(tmp_path, rec, "ok.json"))["tasks"]["t.x"]["claims"][0]["ok"] is True


def test_records_the_writer_makes_pass_the_schema(tmp_path):
    w = RunWriter(mode="run", device="cpu", size=None, argv=["run"], fingerprint=FP, peak=None, runs_dir=tmp_path)
    w.add({"id": "a.b", "status": "error", "reason": "x", "duration_s": 1.5, "metrics": {"loss": float("nan")}})
    w.finish("interrupted")
    assert load_run(w.path)["tasks"]["a.b"]["metrics"] == {"loss": None}


def test_report_default_picks_the_newest_complete_run_and_skips_stray_files(tmp_path):
    machine = tmp_path / "testbox-2c"
    machine.mkdir()
    full = _write(machine, _record(run_id="20260101T000000Z_a", mode="run"), "20260101T000000Z_a.json")
    _write(machine, _record(run_id="20260102T000000Z_b", mode="check"), "20260102T000000Z_b.json")
    _write(machine, _record(run_id="20260103T000000Z_c", status="running"), "20260103T000000Z_c.json")
    _write(machine, bytes(range(256)), "20260104T000000Z_stray.json")
    (machine / "20260105T000000Z_dir.json").mkdir()  # not a file: not listed
    assert len(find_runs(tmp_path, "testbox-2c")) == 4
    path, skipped = newest_full_run(tmp_path, "testbox-2c")
    assert path == full
    assert len(skipped) == 1 and "20260104T000000Z_stray.json" in skipped[0] and "binary" in skipped[0]
    assert newest_full_run(tmp_path / "nothing", "testbox-2c") == (None, [])


def test_report_history_skips_a_stray_binary_file(tmp_path):
    from harness.report import render_report

    machine = tmp_path / "testbox-2c"
    machine.mkdir()
    good = _write(machine, _record(run_id="20260102T000000Z_a", mode="run"), "20260102T000000Z_a.json")
    _write(machine, b"\x00\xff" * 64, "20260101T000000Z_stray.json")
    out = render_report([good], out=tmp_path / "r.html", runs_dir=tmp_path)
    assert "20260101T000000Z_stray.json" in out.read_text()  # noted on the page, not a traceback
