"""drills timer-check: busy processes never outlive it, the record and its summary (figures not asserted)."""

import json
import os
import time

import pytest

from harness import timer_check as tc


def _gone(pid):
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_busy_processes_are_ended_on_exit_and_on_error():
    with pytest.raises(RuntimeError), tc.busy_processes(2, deadline_s=60) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
        assert all(os.getpgid(p.pid) == p.pid != os.getpgid(0) for p in procs)  # their own groups
        raise RuntimeError("the measurement failed")
    assert all(p.poll() is not None for p in procs) and all(_gone(p.pid) for p in procs)


def test_busy_processes_end_themselves_at_their_deadline():
    with tc.busy_processes(1, deadline_s=0.5) as procs:
        t = time.monotonic()
        while procs[0].poll() is None and time.monotonic() - t < 20:
            time.sleep(0.1)
        assert procs[0].poll() == 0


def _m(workload, phase, median, timer, flagged=False, repeat=0):
    return {
        "workload": workload,
        "phase": phase,
        "repeat": repeat,
        "harness": {"median_ms": median, "contended": flagged, "noisy": False},
        "timer_ms": timer,
        "flagged": flagged,
    }


def test_summary_of_a_hand_written_record():
    ms = [
        _m("matmul", "quiet", 1.00, 1.01),
        _m("loop", "quiet", 2.00, 1.98),
        _m("matmul", "loaded", 1.05, 1.9),
        _m("loop", "loaded", 3.0, 3.1, flagged=True),
    ]
    s = tc.summarise(ms)
    assert s["quiet_ratios"] == {"matmul": pytest.approx(0.9901, abs=1e-4), "loop": pytest.approx(1.0101, abs=1e-4)}
    assert s["quiet_target_met"] and s["flagged_share"] == 0.5
    assert s["loaded_over_quiet_unflagged"] == [{"workload": "matmul", "repeat": 0, "ratio": 1.05}]
    assert s["worst_unflagged_deviation"] == pytest.approx(0.05) and s["loaded_target_met"] is True
    assert s["timer_loaded_over_quiet"]["matmul"] == pytest.approx(1.881, abs=1e-3)
    # a 20 % unflagged drift misses the target; all flagged: nothing to judge
    assert tc.summarise(ms[:2] + [_m("matmul", "loaded", 1.2, 1.2)])["loaded_target_met"] is False
    assert tc.summarise(ms[:2] + [_m("matmul", "loaded", 9.0, 9.0, flagged=True)])["loaded_target_met"] is None
    busy = tc.summarise([_m("matmul", "quiet", 3.0, 0.5, flagged=True), _m("matmul", "loaded", 3.0, 3.0, flagged=True)])
    assert busy["quiet_ratio"] is None and busy["quiet_target_met"] is None and busy["flagged_share"] == 1.0
    assert "not quiet" in tc.timer_check_summary({"summary": busy})[0]["value"]
    rows = tc.timer_check_summary({"summary": s, "cores": 2, "busy": 2, "load_avg": {"quiet": [0.3], "loaded": [2.4]}})
    assert [r["met"] for r in rows] == [True, True, None]
    assert rows[1]["figure"].endswith("2 busy on 2 cores") and "50%" in rows[2]["value"]


def test_tiny_run_writes_a_record(tmp_path):
    rec = tc.run_timer_check(busy=1, repeats=1, min_run_time_s=0.02, log=lambda s: None)
    assert rec["kind"] == tc.RECORD_KIND and rec["busy"] == 1 and rec["threads"] == 1
    assert {(m["workload"], m["phase"]) for m in rec["measurements"]} == {
        (w, p) for w in ("matmul", "elementwise", "python_loop") for p in ("quiet", "loaded")
    }
    assert all("n_preempted" in m["harness"] and m["timer_ms"] > 0 for m in rec["measurements"])
    path = tc.save_record(rec, tmp_path)
    assert path.parent.parent == tmp_path and path.parent.name == rec["machine_id"]
    assert json.loads(path.read_text())["summary"] == rec["summary"]
    assert len(tc.timer_check_summary(rec)) == 3


def test_cli_usage_errors(capsys):
    from harness.cli import main

    assert main(["timer-check", "--threads", "0", "--no-save"]) == 2
    assert main(["timer-check", "--busy", "-1", "--no-save"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--threads 0" in err[0] and "--busy -1" in err[1]
