"""3.05 weight_updates: recorded ratios equal the parameter deltas; mutants: test_mutants.py."""

from harness import REGISTRY
from harness.context import Context
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.weight_updates")


def test_check_passes_and_plots_every_layer():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves} == {"net.0.weight", "net.2.weight", "net.4.weight"}


def test_prepare_runs_every_variant():
    ctx = Context(Task, mode="bench")
    for v in Task.variants:
        Task().prepare(ctx, v, ctx.configs[0]).fn()
