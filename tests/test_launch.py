"""harness.launch: torchrun-style environment, results per rank, loud failures naming the rank."""

import os
import pickle
import time

import pytest
import torch
import torch.distributed as dist

from harness.launch import LaunchError, LaunchTimeout, free_port, launch, resolve_backend

# -- rank functions: module level, so the ranks import them by reference -------------------


def env_and_all_reduce(offset):
    keys = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "OMP_NUM_THREADS")
    keys += ("TORCHELASTIC_RUN_ID",)  # set by torch's elastic agent: the job runs on torchrun's engine
    t = torch.tensor([float(dist.get_rank() + offset)])
    dist.all_reduce(t)  # SUM over ranks
    return {k: os.environ.get(k) for k in keys} | {
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "rank": dist.get_rank(),
        "world": dist.get_world_size(),
        "backend": dist.get_backend(),
        "sum": t.item(),
    }


def fail_on_rank_1():
    if int(os.environ["RANK"]) == 1:
        raise ZeroDivisionError("planted failure in rank 1")
    dist.barrier()  # rank 0 would wait here forever for the dead rank
    return "unreachable"


def die_on_rank_1():
    if int(os.environ["RANK"]) == 1:
        os._exit(7)
    return "ok"


def sleep_forever():
    time.sleep(600)


# -- tests ------------------------------------------------------------------------------


def test_env_matches_torchrun_gloo_works_and_values_come_back_in_rank_order():
    out = launch(env_and_all_reduce, 2, args=(10,), backend="gloo", timeout_s=180)
    assert [o["RANK"] for o in out] == ["0", "1"] and [o["LOCAL_RANK"] for o in out] == ["0", "1"]
    assert {o["WORLD_SIZE"] for o in out} == {"2"} and {o["LOCAL_WORLD_SIZE"] for o in out} == {"2"}
    assert len({o["MASTER_ADDR"] for o in out}) == 1 and len({o["MASTER_PORT"] for o in out}) == 1
    assert {o["OMP_NUM_THREADS"] for o in out} == {"1"} and {o["threads"] for o in out} == {1}
    assert out[0]["pid"] != out[1]["pid"] != os.getpid()
    assert out[0]["TORCHELASTIC_RUN_ID"] and out[0]["TORCHELASTIC_RUN_ID"] == out[1]["TORCHELASTIC_RUN_ID"]
    assert [o["rank"] for o in out] == [0, 1]
    assert all(o["world"] == 2 and o["backend"] == "gloo" and o["sum"] == 10 + 11 for o in out)


def test_exception_names_the_rank_and_carries_its_traceback():
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match=r"rank 1 of 2 failed \(raised\)") as info:
        launch(fail_on_rank_1, 2, backend="gloo", timeout_s=180)
    assert info.value.rank == 1
    assert "ZeroDivisionError: planted failure in rank 1" in str(info.value)
    # start-up of the agent and two interpreters dominates (seconds; a minute on a loaded 2-core
    # machine); the point is that rank 0, stuck in a barrier, does not wait for the limit
    assert time.monotonic() - t0 < 170, "rank 0, stuck in a barrier, must be killed soon after rank 1 died"


def test_a_rank_that_dies_without_traceback_is_named():
    with pytest.raises(LaunchError, match=r"rank 1 of 2 failed \(exit code 7\)") as info:
        launch(die_on_rank_1, 2, backend=None, timeout_s=180)
    assert info.value.rank == 1 and not isinstance(info.value, LaunchTimeout)


def test_timeout_kills_every_rank():
    t0 = time.monotonic()
    with pytest.raises(LaunchTimeout, match=r"timed out after 3 s with rank\(s\) \[0\]"):
        launch(sleep_forever, 1, backend=None, timeout_s=3)
    assert time.monotonic() - t0 < 15


def test_bad_arguments_are_rejected_before_any_process_starts():
    with pytest.raises(ValueError, match="pickled"):
        launch(lambda: 1, 2)
    with pytest.raises(ValueError, match="world_size"):
        launch(env_and_all_reduce, 0)
    with pytest.raises(ValueError, match="unknown backend"):
        launch(env_and_all_reduce, 1, backend="mpi")
    with pytest.raises(ValueError, match="timeout_s"):
        launch(env_and_all_reduce, 1, timeout_s=0)


def test_backend_resolution_and_free_port():
    want = "nccl" if torch.cuda.device_count() >= 2 and dist.is_nccl_available() else "gloo"
    assert resolve_backend("auto", 2) == want
    if torch.cuda.device_count() < 64:
        with pytest.raises(ValueError, match="one GPU per rank"):
            resolve_backend("nccl", 64)
    assert 0 < free_port() < 65536
    pickle.dumps(env_and_all_reduce)  # by reference


def test_a_task_rank_job_runs_under_a_real_torchrun(tmp_path):
    """`torchrun ... -m harness.dist advanced.ddp`: the README's multi-node command, on one node."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"no torchrun beside {sys.executable}")
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "harness.dist", "advanced.ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["task"] == "advanced.ddp" and out["world_size"] == 2 and len(out["per_rank"]) == 2
    assert all(len(times) > 0 and all(t > 0 for t in times) for times in out["per_rank"])


def test_harness_dist_outside_torchrun_is_one_line_exit_2():
    from harness.dist import main

    env = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE") if k in os.environ}
    try:
        assert main(["advanced.ddp"]) == 2
    finally:
        os.environ.update(env)


def sleep_forever_noting_pid(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)


def test_ranks_end_with_the_process_that_launched_them(tmp_path):
    """The agent has its own session (out of reach of the runner's process-group kill): when
    its parent is SIGKILLed (Ctrl-C or a time limit ending a drills worker), it and its ranks
    must end too, not run on orphaned."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    pid_file = tmp_path / "rank0.pid"
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_launch; "
        "from harness.launch import launch; "
        f"launch(test_launch.sleep_forever_noting_pid, 1, args=({str(pid_file)!r},), backend=None, timeout_s=300)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert parent.poll() is None and time.monotonic() < deadline, "the rank never started"
            time.sleep(0.2)
        rank = int(pid_file.read_text())
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(rank, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(rank, signal.SIGKILL)
    pytest.fail(f"rank {rank} outlived the process that launched it by 10 s")
