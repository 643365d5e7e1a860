"""2.04 sgd_momentum: trajectories equal torch.optim.SGD; one deviation table per dtype (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.sgd_momentum")


def test_check_passes():
    rec = run_check(Task)
    assert {
        f"{v} trajectory = torch.optim.SGD ({dt})" for v in ("loop", "foreach") for dt in ("float32", "float64")
    } | {"negative lr rejected", "Nesterov without momentum rejected", "non-leaf parameter rejected"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
    # one table per dtype, one row per case and variant
    assert [len(t["rows"]) for t in rec.tables] == [8, 8]
