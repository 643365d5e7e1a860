"""3.09 lr_schedule: hand schedules equal torch's value by value (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.lr_schedule")


def test_check_passes_and_records_both_curves():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {(c["name"], c["series"]) for c in rec.curves} == {
        (f"lr: {k}", v) for k in ("step", "cosine", "warmup_cosine") for v in ("torch", "hand")
    }


def test_prepare_times_every_variant():
    from harness.context import Context

    ctx = Context(Task, mode="bench")
    for v in Task.variants:
        Task().prepare(ctx, v, ctx.configs[0]).fn()
