"""m2.sgd_vs_adam: same seed, batches and budget for every variant, curves recorded; planted unfairness is caught."""

import pytest

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m2.sgd_vs_adam")


@pytest.mark.parametrize("seed", [0, 1])
def test_check_passes(seed):
    rec = run_check(Task, rng_seed=seed)
    assert all(c["passed"] for c in rec.checks.values())
    series = {(c["name"], c["series"]) for c in rec.curves}
    assert {("train loss", v) for v in Task.variants} <= series


class SeedPerVariant(Task):
    """Seeds each variant's model differently: the curves compare initialisations too."""

    def model(self, variant, config, device, dtype, seed):
        return super().model(variant, config, device, dtype, seed + Task.variants.index(variant))


class OwnBatchesPerVariant(Task):
    def batch_indices(self, variant, config, n, seed):
        return super().batch_indices(variant, config, n, seed + Task.variants.index(variant))


class SameOptimizerForAll(Task):
    def optimizer(self, variant, params, lr):
        return super().optimizer("sgd", params, lr)


def test_different_init_is_caught():
    expect_check_fails(SeedPerVariant, match="initial parameters")


def test_different_batches_are_caught():
    expect_check_fails(OwnBatchesPerVariant, match="not the same sequence")


def test_identical_curves_are_caught():
    # every variant secretly SGD, with the same lr: the three curves coincide
    class Wrong(SameOptimizerForAll):
        def run(self, variant, config, device, dtype, seed, lr=None):
            return super().run(variant, config, device, dtype, seed, lr=0.3)

    expect_check_fails(Wrong, match="optimizer")
