"""gpu-check's run loop end to end, on a CPU posing as the GPU (one subprocess, ~20-30 s on 2 cores)."""

import os
import subprocess
import sys

import pytest

from harness.results import find_runs, load_run

E2E = """
import json, sys, torch
from harness import gpu_check, peak, runner
E = gpu_check.Estimate
gpu_check.STARTUP, gpu_check.PEAK = E(50, "start-up"), E(1, "peak")
gpu_check.ESTIMATES.update({"zz_planted.ok": E(7, "ok"), "zz_planted.hangs": E(2, "hangs")})
gpu_check.ESTIMATES["zz_planted.wrong"] = E(500, "does not fit")
runner.resolve_device = lambda d: torch.device("cpu")  # a CPU posing as the GPU: the loop is what is tested
peak.load_or_measure = lambda *a, **k: {"matmul_gflops": 1.0, "copy_gbps": 1.0}
from harness.cli import main
common = ["gpu-check", "--budget", "60", "--results-dir", sys.argv[1], "--min-run-time", "0.01"]
print("RC1", main(common + ["--task", "zz_planted.ok", "--task", "zz_planted.hangs", "--task", "zz_planted.wrong"]))
print("RC2", main(common + ["--task", "zz_planted.ok", "--task", "zz_planted.wrong"]))
"""


def test_run_loop_end_to_end_budgets_cut_off_and_resume(planted_dir, tmp_path):
    """The whole gpu-check loop on a CPU posing as the GPU, with planted tasks: budgets become time limits,
    a hanging task is cut off at its budget, one over the budget is not started, and a second invocation
    keeps the finished task instead of running it again."""
    env = {**os.environ, "DRILLS_TASKS_DIR": str(planted_dir), "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-c", E2E, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert "RC1 1" in r.stdout and "RC2 0" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    first, second = [load_run(p) for p in find_runs(tmp_path)]
    plan = {s["id"]: s for s in first["gpu_check"]["plan"]}
    assert sum(s["budget_s"] for s in plan.values()) == pytest.approx(60)
    t = first["tasks"]
    budget = plan["zz_planted.ok"]["budget_s"]  # its time limit: the budget, + up to 25% of unused time
    assert t["zz_planted.ok"]["status"] == "pass"
    assert budget <= t["zz_planted.ok"]["gpu_check_budget_s"] <= 1.25 * budget + 0.05  # limits are in tenths
    hang_limit = t["zz_planted.hangs"]["gpu_check_budget_s"]
    assert (
        t["zz_planted.hangs"]["status"] == "error"
        and f"timed out after {hang_limit:.0f} s" in t["zz_planted.hangs"]["reason"]
    )
    assert t["zz_planted.wrong"]["status"] == "skip" and "over the gpu-check budget" in t["zz_planted.wrong"]["reason"]
    t2 = second["tasks"]
    assert (
        t2["zz_planted.ok"]["resumed_from"] == first["run_id"]
        and second["gpu_check"]["resumed_from"] == first["run_id"]
    )
    assert "zz_planted.ok" not in [s["id"] for s in second["gpu_check"]["plan"]]
