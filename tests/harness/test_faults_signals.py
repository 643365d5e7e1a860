"""Issue 10: Ctrl-C while the worker starts, and a worker whose `drills` process was SIGKILLed.

A terminal's Ctrl-C goes to the whole foreground process group: here ``os.killpg`` of a
`drills` started in its own session plays the terminal.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.results import find_runs, load_run

HANGS = '''
    import os, subprocess, time
    from pathlib import Path
    from harness import Comparison, task

    @task("zz_signals.hangs", seed="1.01", title="starts a child and hangs")
    class Hangs(Comparison):
        """Starts `sleep 300`, says so, hangs."""
        sizes = {"tiny": None}
        variants = ("a",)
        def check(self, ctx):
            child = subprocess.Popen(["sleep", "300"])
            d = Path(os.environ["DRILLS_TEST_DIR"])
            (d / "pids.tmp").write_text(f"{os.getpid()} {child.pid}")
            os.replace(d / "pids.tmp", d / "pids")
            time.sleep(600)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not reaped yet by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


@pytest.fixture
def env(tmp_path):
    (tmp_path / "tasks" / "zz_signals").mkdir(parents=True)
    (tmp_path / "tasks" / "zz_signals" / "hangs.py").write_text(textwrap.dedent(HANGS))
    return {
        **os.environ,
        "DRILLS_TASKS_DIR": str(tmp_path / "tasks"),
        "DRILLS_RESULTS_DIR": str(tmp_path / "runs"),
        "DRILLS_TEST_DIR": str(tmp_path),
    }


def _as_in_a_terminal():
    """A shell script's background job starts with SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler; a terminal's foreground job has it at default. Start the CLI as
    the latter, so the test does not depend on how its own runner was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(env):
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "check", "--task", "zz_signals.hangs", "--save", "--time-limit", "300"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_in_a_terminal,
    )


def test_ctrl_c_while_the_worker_starts(env, tmp_path):
    p = _start(env)
    deadline = time.time() + 120
    # the record is created just before the worker is spawned; then wait for the spawned child
    while time.time() < deadline and not (find_runs(tmp_path / "runs") and _children(p.pid)):
        time.sleep(0.05)
    workers = _children(p.pid)
    assert workers and not (tmp_path / "pids").exists()
    os.killpg(p.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "no task had finished" in err and "are kept" not in err
    rec = load_run(find_runs(tmp_path / "runs")[0])
    assert rec["status"] == "interrupted" and rec["tasks"] == {}
    time.sleep(1)
    assert [w for w in workers if _alive(w)] == []


def test_a_worker_whose_drills_process_was_killed_ends_quietly(env, tmp_path):
    p = _start(env)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "pids").exists():
        time.sleep(0.1)
    worker, child = (int(x) for x in (tmp_path / "pids").read_text().split())
    p.kill()  # SIGKILL: no handler runs in the main process
    out, err = p.communicate(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and (_alive(worker) or _alive(child)):
        time.sleep(0.1)
    assert not _alive(worker) and not _alive(child)  # the worker noticed and ended its group
    assert "BrokenPipeError" not in err and "Traceback" not in err
    rec = load_run(find_runs(tmp_path / "runs")[0])  # not "running" forever: the worker closed it
    assert rec["status"] == "interrupted" and "killed" in rec["warnings"][-1]
