"""9.04 checkpointing: resume bit for bit, atomic writes, safe loads (its 12 mutants: test_mutants.py).

Beside the task's check: the order of the durable write (file fsync, rename, folder fsync),
the RNG round trip through ``weights_only=True``, and the clear refusals.
"""

import os
import random

import numpy as np
import pytest
import torch

from harness import REGISTRY
from harness.checkpoint import CheckpointError, atomic_save, capture_rng, load_checkpoint, restore_rng, stale_temps
from harness.context import Context
from harness.testing import run_check
from kernels.checkpointing.faults import FailingFile, filesystem_of
from kernels.checkpointing.run import ALL_PARTS, ResumableRun, RunConfig, first_difference

Task = REGISTRY.get("deployment.checkpointing")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "resumed == uninterrupted, bit for bit",
        "exception mid-write: last good checkpoint intact",
        "SIGKILL mid-write: last good checkpoint intact",
        "unsafe object refused",
        "truncated file named",
    } <= set(rec.checks)
    assert rec.metrics["resume_mismatched_states"] == 0
    assert rec.checks["unsafe object refused"]["n"] == 2


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
def test_write_order_is_file_fsync_rename_folder_fsync(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1]
    )
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", None)), real_replace(a, b))[1])
    atomic_save({"w": torch.ones(3)}, tmp_path / "c.pt")
    # file data first (not a folder), then the rename, then the folder that holds the new name
    assert calls == [("fsync", False), ("replace", None), ("fsync", True)]
    calls.clear()
    atomic_save({"w": torch.ones(3)}, tmp_path / "c.pt", fsync=False)
    assert calls == [("replace", None)]


def test_failed_write_removes_its_temporary_file(tmp_path):
    atomic_save({"w": torch.zeros(4)}, tmp_path / "c.pt")
    with pytest.raises((OSError, RuntimeError)):
        atomic_save({"w": torch.ones(100_000)}, tmp_path / "c.pt", wrap=lambda f: FailingFile(f, 1000))
    assert stale_temps(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["w"], torch.zeros(4))


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_save({}, tmp_path / "nope" / "c.pt")


def test_rng_states_round_trip_through_weights_only(tmp_path):
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    np.random.normal(size=3)  # leaves a cached gaussian: has_gauss = 1 in the legacy state
    random.gauss(0, 1)  # and Python's gauss_next
    atomic_save({"rng": capture_rng()}, tmp_path / "r.pt")
    want = (torch.rand(5), np.random.normal(size=5), [random.random() for _ in range(5)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_rng(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(5), np.random.normal(size=5), [random.random() for _ in range(5)])
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_unexpected_objects_are_refused_by_name(tmp_path):
    torch.save({"rng": np.random.get_state()}, tmp_path / "np.pt")
    with pytest.raises(CheckpointError, match="refuses.*numpy") as e:
        load_checkpoint(tmp_path / "np.pt")
    assert "add_safe_globals" in str(e.value) and "\n" not in str(e.value)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a dict"):
        load_checkpoint(tmp_path / "list.pt")
    atomic_save({"a": 1}, tmp_path / "ok.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "ok.pt", required=("model",))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_each_part_left_out_changes_the_resumed_run():
    cfg = RunConfig()
    runs = {}
    for parts in (ALL_PARTS, tuple(p for p in ALL_PARTS if p != "scheduler")):
        first = ResumableRun(cfg, 0)
        for _ in range(cfg.stop_at):
            first.step()
        resumed = ResumableRun(cfg, 1)
        resumed.load(first.state(parts))
        runs[parts] = resumed.state(ALL_PARTS)["scheduler"]["last_epoch"]
    assert list(runs.values()) == [cfg.stop_at, 0]  # without it, the LR schedule starts over
    with pytest.raises(ValueError, match="unknown checkpoint parts"):
        ResumableRun(cfg, 0).state(("weights",))


def test_first_difference_compares_bits_and_names_the_path():
    a = {"opt": {"state": [torch.zeros(2), 1], "lr": 0.1}}
    assert first_difference(a, a) is None
    signed = {"opt": {"state": [torch.tensor([0.0, -0.0]), 1], "lr": 0.1}}
    assert first_difference(a, signed) == "opt.state.0"  # torch.equal calls these equal; the bits differ
    assert first_difference(a, {"opt": {"state": [torch.zeros(2), 1], "lr": 0.2}}) == "opt.lr"
    assert first_difference(a, {"opt": {"state": [torch.zeros(2, dtype=torch.float64), 1], "lr": 0.1}})
    nan = torch.tensor([float("nan")])
    assert first_difference(nan, nan.clone()) is None


def test_bench_runs_tiny(tmp_path):
    ctx = Context(Task, mode="bench", size="tiny", min_run_time_s=0.01, workdir=tmp_path)
    Task().bench(ctx)
    rows = {(m["impl"], m["config"]) for m in ctx.record.measurements}
    assert rows == {(i, c) for i in Task.variants for c in ("1MB", "8MB")}
    assert all(m["gbps"] > 0 for m in ctx.record.measurements)
    assert filesystem_of(tmp_path) in ctx.record.notes[0]
