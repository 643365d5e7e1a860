"""harness.multirank: the backend a multi-rank check and bench use, and slowest-rank step times."""

from __future__ import annotations

import dataclasses

import pytest

from harness import Context, System, task
from harness import multirank as mr
from harness.registry import Registry


@dataclasses.dataclass(frozen=True)
class _Cfg:
    n: int = 1


@task("m5.multirank_probe", seed="m5", title="probe", registry=Registry())
class _Probe(System):
    """A registry-less task, only to build a Context."""

    sizes = {"tiny": _Cfg()}


def test_cpu_runs_use_gloo_without_notes_or_skips():
    ctx = Context(_Probe, mode="bench")
    assert mr.world_backend(ctx, 2) == mr.check_backend(ctx, 2) == mr.bench_backend(ctx, 2, "x") == "gloo"
    assert not ctx.record.notes and not ctx.record.skipped_parts


def test_cuda_without_enough_gpus_checks_on_gloo_and_skips_the_bench(monkeypatch):
    ctx = Context(_Probe, mode="bench")
    monkeypatch.setattr(Context, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(mr, "resolve_backend", lambda backend, world: "gloo")
    assert mr.world_backend(ctx, 4) is None
    assert mr.check_backend(ctx, 4) == "gloo" and "fewer than 4 GPUs" in ctx.record.notes[-1]
    assert mr.bench_backend(ctx, 4, "NCCL steps") is None
    assert ctx.record.skipped_parts[-1]["part"] == "NCCL steps"
    monkeypatch.setattr(mr, "resolve_backend", lambda backend, world: "nccl")
    assert mr.check_backend(ctx, 4) == mr.bench_backend(ctx, 4, "x") == "nccl"


def test_a_step_lasts_as_long_as_its_slowest_rank():
    ctx = Context(_Probe, mode="bench")
    m = mr.record_slowest_rank(ctx, "ddp", [[1.0, 5.0, 2.0], [3.0, 1.0, 2.0]], backend="gloo", items=8)
    assert m.samples_ms == [3.0, 5.0, 2.0] and m.mode == "wall-clock in rank, gloo"
    assert ctx.record.measurements[-1]["median_ms"] == 3.0
    with pytest.raises(ValueError, match="no samples"):
        mr.record_slowest_rank(ctx, "ddp", [[], []], backend="gloo")
