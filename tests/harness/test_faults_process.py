"""Issue 10, processes left behind: a timed-out task's children die with it, what it measured stays.

Planted tasks run in a `drills` subprocess (DRILLS_TASKS_DIR); they write the pids to check
into $DRILLS_TEST_DIR.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.results import find_runs, load_run

CHILD_HANGS = '''
    import os, subprocess, time
    from pathlib import Path
    from harness import Comparison, task

    @task("zz_faults.child_hangs", seed="1.01", title="starts a child and hangs")
    class ChildHangs(Comparison):
        """Records two checks and a metric, starts `sleep 300`, then hangs."""
        sizes = {"tiny": None}
        variants = ("a",)
        time_limit_s = {"check": 4.0}
        def check(self, ctx):
            ctx.expect(True, "first check before the hang", name="first")
            ctx.metric("loss_before_hang", 0.25)
            ctx.expect(True, "second check before the hang", name="second")
            child = subprocess.Popen(["sleep", "300"])
            d = Path(os.environ["DRILLS_TEST_DIR"])
            (d / "pids.tmp").write_text(f"{os.getpid()} {child.pid}")
            os.replace(d / "pids.tmp", d / "pids")
            time.sleep(600)
'''


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped by init, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids, seconds=10.0) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.fixture
def faults(tmp_path):
    root = tmp_path / "tasks"
    (root / "zz_faults").mkdir(parents=True)
    (root / "zz_faults" / "child_hangs.py").write_text(textwrap.dedent(CHILD_HANGS))
    env = {
        **os.environ,
        "DRILLS_TASKS_DIR": str(root),
        "DRILLS_RESULTS_DIR": str(tmp_path / "runs"),
        "DRILLS_TEST_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    return tmp_path, env


def _drills(env, *args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _pids(tmp_path, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if (tmp_path / "pids").exists():
            return [int(x) for x in (tmp_path / "pids").read_text().split()]
        time.sleep(0.2)
    raise AssertionError("the planted task never started")


def _record(tmp_path):
    runs = find_runs(tmp_path / "runs")
    assert len(runs) == 1, runs
    return load_run(runs[0])


def test_timeout_kills_the_tasks_children_and_keeps_what_it_measured(faults):
    tmp_path, env = faults
    p = _drills(env, "check", "--task", "zz_faults.child_hangs", "--save")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, out + err
    worker, child = _pids(tmp_path, 1)
    assert wait_gone([worker, child], 5) == []  # the `sleep 300` died with the task's process group
    t = _record(tmp_path)["tasks"]["zz_faults.child_hangs"]
    assert t["status"] == "error" and "cut off at 4 s (time limit)" in t["reason"]
    # what it recorded before the hang is kept: both checks and the metric
    assert {c["name"] for c in t["checks"]} == {"first", "second"}
    assert t["metrics"] == {"loss_before_hang": 0.25}
    assert t["area"] == "zz_faults" and t["duration_s"] > 3
