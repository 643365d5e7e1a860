"""1.10 cpu_vs_gpu_speed: the CPU side checks and skips the GPU part by name (mutants: test_mutants.py)."""

import math

import pytest
import torch

from harness import REGISTRY
from harness.crossover import crossover
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("fundamentals.cpu_vs_gpu_speed")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {"cpu vs float64: add", "cpu vs float64: sum", "cpu vs float64: matmul"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
    if not torch.cuda.is_available():
        parts = {p["part"]: p["reason"] for p in rec.skipped_parts}
        assert "cuda" in parts["GPU results vs float64 and vs the CPU result"]
    else:
        assert {"cuda vs float64: matmul", "cuda vs cpu: matmul"} <= set(rec.checks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")
def test_gpu_in_tf32_exceeds_the_bound():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        expect_check_fails(Task, match="cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def test_crossover_interpolates_in_log_log():
    sizes = [1e3, 1e4, 1e5, 1e6]
    cpu = [1.0, 10.0, 100.0, 1000.0]
    gpu = [10.0, 20.0, 40.0, 80.0]  # ratio 10, 2, 0.4, 0.08: crosses between 1e4 and 1e5
    x = crossover(sizes, cpu, gpu)
    # log r goes from log 2 to log 0.4: r = 1 at fraction log2 / log5 of the decade
    assert x == pytest.approx(10 ** (4 + math.log(2) / math.log(5)))
    assert crossover(sizes, cpu, [0.5 * c for c in cpu]) == 1e3  # always faster
    assert crossover(sizes, cpu, [2.0 * c for c in cpu]) is None  # never faster
    assert crossover(sizes, cpu, [0.5, 20.0, 40.0, 80.0]) == pytest.approx(x)  # must *stay* faster


def test_bench_on_cpu_times_the_cpu_and_skips_the_rest():
    from harness.context import Context

    class Quick(Task):
        sizes = {"tiny": [mod.SpeedConfig("add", 100), mod.SpeedConfig("add", 10000)]}

    ctx = Context(Quick, mode="bench", device="cpu", size="tiny", min_run_time_s=0.01)
    Quick().bench(ctx)
    rows = ctx.record.measurements
    if torch.cuda.is_available():
        assert len(rows) == 6 and "crossover_elements_add_cuda" in ctx.record.metrics or ctx.record.notes
    else:
        assert [r["impl"] for r in rows] == ["cpu", "cpu"]
        assert any(p["part"].startswith("GPU timing") and "cuda" in p["reason"] for p in ctx.record.skipped_parts)
        assert not ctx.record.metrics
