"""Runner isolation and the CLI, end to end in subprocesses with planted tasks."""

import json
import signal
import subprocess
import sys
import time

from harness.results import find_runs, load_run


def _record(drills):
    runs = find_runs(drills.runs_dir)
    assert len(runs) == 1, runs
    return load_run(runs[0])


def test_failures_hangs_and_crashes_are_recorded_and_the_run_goes_on(drills):
    r = drills("check", "--area", "zz_planted", "--save", "--time-limit", "10", timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    rec = _record(drills)
    assert rec["status"] == "complete"
    t = rec["tasks"]
    assert t["zz_planted.ok"]["status"] == "pass"
    assert t["zz_planted.wrong"]["status"] == "fail" and "off" in t["zz_planted.wrong"]["reason"]
    assert (
        t["zz_planted.raises"]["status"] == "error" and "boom from a planted task" in t["zz_planted.raises"]["reason"]
    )
    assert "RuntimeError" in t["zz_planted.raises"]["error"]
    # --time-limit (10 s) overrides the task's own 3 s limit
    assert t["zz_planted.hangs"]["status"] == "error" and "timed out" in t["zz_planted.hangs"]["reason"]
    assert t["zz_planted.crashes"]["status"] == "error" and "signal 9" in t["zz_planted.crashes"]["reason"]
    assert t["zz_planted.needs_gpu"]["status"] == "skip" and t["zz_planted.needs_gpu"]["reason"] == "needs cuda"
    # max abs / rel error are recorded for the failing implementation
    off = next(c for c in t["zz_planted.wrong"]["checks"] if c["name"] == "off")
    assert off["passed"] is False and 0.009 < off["max_rel_err"] < 0.011
    fp = rec["fingerprint"]
    for key in ("cpu_model", "cpu_cores", "ram_gib", "torch", "python", "git", "machine_id", "gpus"):
        assert key in fp


def test_task_time_limit_from_the_task(drills):
    t0 = time.time()
    r = drills("check", "--task", "zz_planted.hangs", "--save")
    assert r.returncode == 1
    assert time.time() - t0 < 60
    assert "timed out after 3 s" in _record(drills)["tasks"]["zz_planted.hangs"]["reason"]


def test_ctrl_c_keeps_finished_tasks(drills):
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "check",
            "--task",
            "zz_planted.ok",
            "--task",
            "zz_planted.hangs",
            "--save",
            "--time-limit",
            "300",
        ],
        env=drills.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at default as in a terminal (a background job of a script starts with it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        runs = find_runs(drills.runs_dir)
        if runs and "zz_planted.ok" in json.loads(runs[0].read_text())["tasks"]:
            break
        time.sleep(0.3)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    rec = _record(drills)
    assert rec["status"] == "interrupted"
    assert rec["tasks"]["zz_planted.ok"]["status"] == "pass"


def test_bench_records_measurements_with_units_and_speedup(drills):
    r = drills("bench", "--task", "zz_planted.ok", "--min-run-time", "0.05", "--no-isolate")
    assert r.returncode == 0, r.stdout + r.stderr
    ms = _record(drills)["tasks"]["zz_planted.ok"]["measurements"]
    assert {m["impl"] for m in ms} == {"mul", "add"} and {m["config"] for m in ms} == {"n=8", "n=64"}
    for m in ms:
        assert m["median_ms"] > 0 and m["gbps"] > 0 and "pct_peak_bw" in m and "speedup_vs_baseline" in m
        assert len(m["samples_ms"]) >= 1


def test_list_json_has_the_contract_fields(drills):
    r = drills("list", "--format", "json")
    assert r.returncode == 0, r.stderr
    tasks = json.loads(r.stdout)
    ok = next(t for t in tasks if t["id"] == "zz_planted.ok")
    for key in ("id", "area", "seed", "title", "kind", "requires", "implementations"):
        assert key in ok
    assert ok["implementations"] == ["mul", "add"] and ok["kind"] == "operator"


def test_usage_errors_exit_2_with_one_line(drills):
    for args, needle in (
        (("check", "--task", "zz_planted.okk"), "did you mean zz_planted.ok"),
        (("check", "--area", "zz_plantd"), "did you mean zz_planted"),
        (("check", "--size", "huge"), "valid sizes: tiny, cpu, gpu"),
        (("bench", "--device", "tpu"), "valid: auto, cpu, cuda"),
        (("list", "--task", "nothing.*"), "no task matches"),
    ):
        r = drills(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_compare_and_report_reject_foreign_files(drills, tmp_path):
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": ')
    r = drills("compare", str(foreign), str(broken))
    assert r.returncode == 2 and "foreign.json: not a torchdrills run record" in r.stderr
    r = drills("report", str(broken), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "broken.json: not valid JSON" in r.stderr


def test_data_list_and_fetch_usage_without_downloading(drills):
    r = drills("data", "list")
    assert r.returncode == 0 and "mnist" in r.stdout and "synthetic" in r.stdout
    r = drills("data", "fetch", "nothing", "--data-dir", str(drills.runs_dir))
    assert r.returncode == 2 and "fetchable: cifar10" in r.stderr
    env_without = {k: v for k, v in drills.env.items() if k != "DRILLS_DATA_DIR"}
    import subprocess as sp

    r = sp.run(
        [sys.executable, "-m", "harness.cli", "data", "fetch", "mnist"],
        env=env_without,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "pass --data-dir DIR" in r.stderr


def test_bad_data_under_data_dir_is_one_line_without_a_traceback(tmp_path, monkeypatch):
    """A malformed file in the user's --data-dir fails the task with the reader's message (file,
    expectation, fix) and no traceback from inside the task."""
    from harness import REGISTRY
    from harness.runner import run_task

    d = tmp_path / "planetoid"
    d.mkdir()
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"):
        (d / f"ind.cora.{part}").write_bytes(b"")
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    entry = run_task(REGISTRY.get("research.gnn"), mode="bench", device="cpu", size="tiny", min_run_time_s=0.01)
    assert entry["status"] == "error" and entry["reason"].startswith("DataFormatError: ")
    assert "ind.cora.x" in entry["reason"] and "error" not in entry  # no traceback tail
