"""Issue 10: SIGTERM to the main `drills` process is handled like Ctrl-C (exit 143, README)."""

import signal
import time

from test_faults_signals import _alive, _start, env  # noqa: F401 - env is a fixture used by name

from harness.results import find_runs, load_run


def test_sigterm_is_handled_like_ctrl_c(env, tmp_path):  # noqa: F811 - the imported fixture
    p = _start(env)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "pids").exists():
        time.sleep(0.1)
    worker, child = (int(x) for x in (tmp_path / "pids").read_text().split())
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, out + err
    assert "Traceback" not in err and "terminated: " in err
    deadline = time.time() + 5
    while time.time() < deadline and (_alive(worker) or _alive(child)):
        time.sleep(0.1)
    assert not _alive(worker) and not _alive(child)  # the worker's whole group was killed
    rec = load_run(find_runs(tmp_path / "runs")[0])
    assert rec["status"] == "interrupted" and rec["finished_utc"]
