"""m2.sgd_vs_adam: same seed, batches and budget for every variant, curves recorded; its mutants: test_mutants.py."""

import pytest

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m2.sgd_vs_adam")


@pytest.mark.parametrize("seed", [0, 1])
def test_check_passes(seed):
    rec = run_check(Task, rng_seed=seed)
    assert all(c["passed"] for c in rec.checks.values())
    series = {(c["name"], c["series"]) for c in rec.curves}
    assert {("train loss", v) for v in Task.variants} <= series
