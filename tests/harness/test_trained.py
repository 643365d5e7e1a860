"""harness.trained: builder variants run fair (same seed, data stream, budget) or fail the check."""

import dataclasses

import pytest
import torch

from harness import Comparison, TrainingRun
from harness.mutants import Mutant, run_mutant
from harness.testing import expect_check_fails, run_check
from harness.trained import (
    Budget,
    Recipe,
    default_budget,
    epochs_to_accuracy,
    expect_accuracy,
    expect_learns,
    forward_prepared,
    train_recipe,
    variant,
)


@dataclasses.dataclass(frozen=True)
class Cfg:
    batch_size: int = 16
    epochs: int = 3
    target_accuracy: float = 0.5


def _data(ctx, cfg):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return (x[:96], y[:96]), (x[96:], y[96:])


class Toy(Comparison):
    """Two optimizers on a linearly separable toy set."""

    id, seed, title, area = "test.toy", "0.0", "toy", "test"
    sizes = {"tiny": Cfg()}
    train_data = staticmethod(_data)

    @variant
    def sgd(self, ctx, cfg):
        return Recipe(torch.nn.Linear(4, 2), lambda p: torch.optim.SGD(p, lr=0.5))

    @variant
    def adam(self, ctx, cfg):
        return Recipe(torch.nn.Linear(4, 2), lambda p: torch.optim.Adam(p, lr=0.05))


class ToyRun(TrainingRun):
    """One linear model to a target."""

    id, seed, title, area = "test.toy_run", "0.0", "toy run", "test"
    sizes = {"tiny": Cfg()}
    train_data = staticmethod(_data)

    def recipe(self, ctx, cfg):
        return Recipe(torch.nn.Linear(4, 2), lambda p: torch.optim.Adam(p, lr=0.05))


def _reseeded(self, ctx, cfg):
    torch.manual_seed(123)
    return Toy.adam(self, ctx, cfg)


def _short(self, ctx, name, recipe, opt, data, budget):
    return train_recipe(
        ctx, name, recipe, opt, data, dataclasses.replace(budget, epochs=budget.epochs - int(name == "adam"))
    )


def _other_order(self, ctx, name, recipe, opt, data, budget):
    (x, y), held = data
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(int(name == "adam")))
    return train_recipe(ctx, name, recipe, opt, ((x[perm], y[perm]), held), budget)


def test_fair_comparison_passes_records_curves_and_builds_variants():
    assert [s.name for s in Toy.implementations()] == ["sgd", "adam"]
    assert Toy.baseline() == "sgd"
    rec = run_check(Toy)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"same budget", "same data stream", "same initial weights"} <= set(rec.checks)
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"sgd", "adam"}


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"adam": _reseeded}, "initial weights"),
        ({"train_variant": _short}, "budget"),
        ({"train_variant": _other_order}, "data stream"),
    ],
)
def test_unfair_variant_is_caught(patch, match):
    verdict = run_mutant(Toy, Mutant("unfair", "one variant treated differently", patch, match=match))
    assert verdict["caught"], verdict["how"]


def test_training_run_records_throughput_and_time_to_target():
    rec = run_check(ToyRun)
    assert rec.metrics["samples_per_s"] > 0
    assert rec.metrics["target_accuracy"] == 0.5
    assert rec.metrics["time_to_accuracy_s"] is not None


def test_budget_read_from_config_or_refused():
    assert default_budget(Cfg()) == Budget(batch_size=16, epochs=3, target_accuracy=0.5)

    @dataclasses.dataclass(frozen=True)
    class Steps:
        batch: int = 8
        steps: int = 40

    assert default_budget(Steps()).max_steps == 40
    with pytest.raises(ValueError, match="batch_size"):
        default_budget(object())


class ToyChecked(ToyRun):
    """ToyRun with the task-side helpers: an accuracy floor, a named loss check, epochs to target."""

    floor = 0.5

    def properties(self, ctx, run):
        expect_accuracy(ctx, run, self.floor, name="reaches the floor", why=" (toy)")
        expect_learns(ctx, run, ratio=0.9, window=1, name="loss falls")

    def summarize(self, ctx, run):
        ctx.metric("epochs_to_accuracy", epochs_to_accuracy(run))


def test_accuracy_epochs_and_forward_helpers():
    rec = run_check(ToyChecked)
    assert rec.checks["reaches the floor"]["passed"] and rec.checks["loss falls"]["passed"]
    steps_per_epoch = 96 // 16  # drop_last: whole batches only
    assert rec.metrics["epochs_to_accuracy"] == pytest.approx(rec.metrics["steps_to_accuracy"] / steps_per_epoch)
    failed = expect_check_fails(type("Unreachable", (ToyChecked,), {"floor": 1.01}), match="test accuracy")
    assert str(failed).startswith("test accuracy") and str(failed).endswith("(toy)")  # no run name for train_step
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.5))
    prep = forward_prepared(model, torch.ones(5, 4), unit="rows")
    out = prep.fn()
    assert not model.training and not out.requires_grad and (prep.items, prep.item_unit) == (5, "rows")


def test_transformed_step_trains_on_the_transformed_batch():
    from harness.train import standard_step, transformed_step

    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    models = [torch.nn.Linear(3, 2) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    flip = lambda a, b: (-a, 1 - b)  # noqa: E731  # a transform that changes both
    got = transformed_step(flip)(models[0], opts[0], x, y, torch.nn.functional.cross_entropy)
    want = standard_step(models[1], opts[1], -x, 1 - y)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(models[0].weight, models[1].weight)
