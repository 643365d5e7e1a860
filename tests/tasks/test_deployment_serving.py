"""harness.serving: servers end with their whole process group, on stop, on Ctrl-C and when
the process that started them is killed; the load generator is bounded; `drills check` of the
serving tasks leaves no process behind (found by the argv tag, read from /proc: no psutil).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.serving import REPO_ROOT, TAG_ENV, Server, group_members, processes_tagged, run_load, tagged_servers

# A stand-in server with no torch import (starts in well under a second): answers GET and POST
# with 200, watches its parent like kernels.serve.main does, and has a child in its group.
TINY = r"""
import http.server, os, subprocess, sys
from kernels.serve.main import watch_parent
port = int(sys.argv[sys.argv.index("--port") + 1])
watch_parent(os.getppid())
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *sys.argv[1:]])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _ok(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    do_GET = do_POST = _ok
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def tiny() -> Server:
    return Server([sys.executable, "-c", TINY], name="tiny", ready_timeout_s=30)


def test_stop_ends_the_whole_group():
    with tagged_servers() as tag, tiny() as srv:
        pgid = srv.pgid
        assert len(group_members(pgid)) >= 2  # the leader and its child
        assert len(processes_tagged(tag)) >= 2
    assert group_members(pgid) == [] and processes_tagged(tag) == []


def test_ctrl_c_inside_stops_the_server():
    with tagged_servers() as tag:
        with pytest.raises(KeyboardInterrupt), tiny() as srv:
            pgid = srv.pgid
            raise KeyboardInterrupt
        assert group_members(pgid) == [] and processes_tagged(tag) == []


def test_a_killed_parent_takes_its_server_along():
    with tagged_servers() as tag:
        code = (
            "import sys, time\nfrom harness.serving import Server\n"
            f"s = Server([sys.executable, '-c', {TINY!r}], name='tiny').start()\n"
            "print('ready', flush=True)\ntime.sleep(120)\n"
        )
        env = {**os.environ, TAG_ENV: tag, "PYTHONPATH": str(REPO_ROOT)}
        parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert parent.stdout.readline().strip() == "ready"
            assert processes_tagged(tag)
            parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the server's watchdog helps
            parent.wait()
        finally:
            parent.kill()
            parent.wait()
            for log in Path(tempfile.gettempdir()).glob(f"{tag}-*.log"):  # its stop() never ran
                log.unlink()
    # tagged_servers waited (3 s grace) and found nothing left


def test_load_is_bounded_in_count_and_time():
    with tagged_servers(), tiny() as srv:
        res = run_load(srv.port, "/x", [b"{}"], clients=4, max_requests=40, max_seconds=30)
        assert res.requests == 40 and not res.errors and res.rps > 0
        t0 = time.perf_counter()
        res = run_load(srv.port, "/x", [b"{}"], clients=2, max_requests=10**9, max_seconds=0.5)
        assert time.perf_counter() - t0 < 5 and 0 < res.requests < 10**9
        assert res.percentile(50) <= res.percentile(99)
    with pytest.raises(ValueError, match="clients >= 1"):
        run_load(1, "/x", [b"{}"], clients=0, max_requests=1, max_seconds=1)


def test_a_server_that_exits_early_is_reported_with_its_log():
    from harness.serving import ServerError

    with tagged_servers(), pytest.raises(ServerError, match="exited with code 3"):
        Server([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], name="bad").start()


@pytest.mark.slow  # the CLI imports every task file: ~40-80 s on a busy 2-core machine
@pytest.mark.parametrize("task_id", ["deployment.fastapi"])
def test_drills_check_leaves_no_server(task_id, tmp_path):
    with tagged_servers() as tag:
        env = {**os.environ, TAG_ENV: tag, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "harness.cli", "check", "--task", task_id, "--results-dir", str(tmp_path)]
        out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "pass" in out.stdout
