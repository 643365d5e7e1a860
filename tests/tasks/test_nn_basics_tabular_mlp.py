"""3.07 tabular_mlp: train-only standardisation, beats the majority baseline; planted leaks are caught."""

import torch

from harness import REGISTRY
from harness.data.tabular import fit_standardizer
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.tabular_mlp")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= rec.metrics["majority_baseline_accuracy"] + 0.25


class FitsOnAllRows(Task):
    """The classic leak: statistics of the whole data set, test rows included."""

    def standardizer(self, x_train, x_all):
        return fit_standardizer(x_all)


class SampleStd(Task):
    """Divides by the sample std (n - 1) instead of the population std StandardScaler uses."""

    def standardizer(self, x_train, x_all):
        return x_train.mean(0), x_train.std(0)


class TrimmedLeak(Task):
    """Fits on the training rows plus a single test row: a small leak, still a leak."""

    def standardizer(self, x_train, x_all):
        extra = next(r for r in x_all if not (x_train == r).all(1).any())
        return fit_standardizer(torch.cat([x_train, extra[None]]))


class MajorityModel(Task):
    """A 'model' whose training never moves it off the majority class."""

    def train(self, cfg, ctx, train, test):
        model, log = super().train(cfg, ctx, train, test)
        base = self.majority_accuracy(train[1], test[1])
        log.eval_accuracy = [base] * len(log.eval_accuracy)
        return model, log


def test_standardiser_fitted_on_all_data_is_caught():
    expect_check_fails(FitsOnAllRows, match="fitted mean = train mean")


def test_sample_std_is_caught():
    expect_check_fails(SampleStd, match="population")


def test_one_leaked_test_row_is_caught():
    expect_check_fails(TrimmedLeak, match="fitted mean = train mean")


def test_majority_level_model_is_caught():
    expect_check_fails(MajorityModel, match="majority baseline")
