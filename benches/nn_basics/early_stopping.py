"""3.06 Early stopping by hand.

Compared: ``harness.early_stopping.EarlyStopping`` (patience, min_delta, mode min/max,
snapshot and restore of the best weights) against hand-derived answers on scripted curves.

Check (tiny):

* stop and best epoch on six scripted curves (``SCRIPTED``), each answer worked out by hand:
  a late second minimum, min_delta turning a small step into no improvement, mode max, a
  curve that keeps improving, an equal value (no improvement), NaNs (never improve);
* restore: an MLP with BatchNorm (so buffers count too) trains on the real digits, one
  epoch per scripted value, the check cloning every epoch's ``state_dict``; ``restore``
  must make every parameter and buffer bitwise equal to the best epoch's copy, and the
  weights must have moved after it;
* bad arguments raise ValueError; restoring without a snapshot raises RuntimeError.

Bench: a real early-stopped run on the digits (train/validation/test 60/15/25%, patience
5): loss curves, stop epoch, test accuracy restored vs last; ``step()`` and one epoch timed.

Lesson: the training loss keeps falling while the validation loss bottoms out after a few
epochs and then wanders upwards, so patience stops the run long before its budget and the
restored best-epoch weights score at least as well on the test split as the last ones
(Prechelt, "Early Stopping - But When?", in Neural Networks: Tricks of the Trade, 1998).
A step costs a comparison plus, on an improvement, a state-dict clone: a sliver of an epoch.
The clone is what matters: ``state_dict()`` kept as is holds the live tensors.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.digits import digits_features
from harness.data.tabular import stratified_split
from harness.early_stopping import EarlyStopping, train_with_early_stopping
from harness.mutants import Mutant
from harness.train import evaluate, fit
from models.mlp import MLP, MLPConfig

#: (name, values, patience, min_delta, mode, expected stop epoch or None, expected best epoch)
SCRIPTED = [
    ("loss, second minimum", [1.0, 0.8, 0.7, 0.69, 0.71, 0.72, 0.65, 0.66, 0.67, 0.68, 0.5], 3, 0.0, "min", 9, 6),
    ("loss, min_delta 0.02", [1.0, 0.8, 0.7, 0.69, 0.71, 0.72, 0.65, 0.66, 0.67, 0.68, 0.5], 3, 0.02, "min", 5, 2),
    ("accuracy, mode max", [0.5, 0.6, 0.605, 0.62, 0.61, 0.615, 0.7], 2, 0.01, "max", 5, 3),
    ("always improving", [5.0, 4.0, 3.0, 2.0, 1.0], 2, 0.0, "min", None, 4),
    ("equal is no improvement", [1.0, 1.0, 0.5], 1, 0.0, "min", 1, 0),
    ("NaN never improves", [1.0, math.nan, math.nan, 0.1], 2, 0.0, "min", 2, 0),
]


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Model and budget of the early-stopped runs."""

    hidden: tuple[int, ...]
    """MLP hidden widths (64 inputs, 10 classes, BatchNorm after each hidden Linear)"""
    max_epochs: int
    """epoch budget of the real run in the bench"""
    patience: int = 5
    """bad epochs tolerated in the real run"""
    batch_size: int = 32
    """samples per Adam step"""
    lr: float = 3e-3
    """Adam learning rate"""


def digits_splits(seed: int, device, dtype):
    """Train / validation / test splits of the digits (60/15/25%), pixels / 16: (N, 64), (N,)."""
    x, labels = digits_features(dtype)  # (1797, 64), (1797,)
    rest, test = stratified_split(labels, 0.25, seed=seed)
    tr, va = stratified_split(labels[rest], 0.2, seed=seed + 1)  # indices into rest
    tr, va = rest[tr], rest[va]
    return [(x[i].to(device), labels[i].to(device)) for i in (tr, va, test)]


# -- wrong versions (mutants) ------------------------------------------------------------


class OffByOne(EarlyStopping):
    """Stops after patience + 1 bad epochs (bad_epochs > patience)."""

    def step(self, value, model=None):
        super().step(value, model)
        return self.bad_epochs > self.patience


class NoRestore(EarlyStopping):
    def restore(self, model):  # checks for a snapshot, then forgets to load it
        if self.best_state is None:
            raise RuntimeError("no snapshot")


class SnapshotWithoutClone(EarlyStopping):
    def snapshot(self, model):  # state_dict() itself holds the live weights: 'restore' is a no-op
        return model.state_dict()


class ParametersOnly(EarlyStopping):
    def snapshot(self, model):  # parameters only: BatchNorm's running statistics are not kept
        return {k: v.detach().clone() for k, v in model.named_parameters()}

    def restore(self, model):
        model.load_state_dict(self.best_state, strict=False)


class MinDeltaIgnored(EarlyStopping):
    """Any strict improvement counts, however small: min_delta is ignored."""

    def is_improvement(self, value):
        return value < self.best if self.mode == "min" else value > self.best


class EqualImproves(EarlyStopping):
    """Counts a value equal to the best as an improvement (<= instead of <)."""

    def is_improvement(self, value):
        return super().is_improvement(value) or value == self.best


@task("nn_basics.early_stopping", seed="3.06", title="early stopping by hand")
class EarlyStoppingTask(TrainingRun):
    __doc__ = __doc__
    variants = ("train_epoch", "step_improvement", "step_no_improvement")
    sizes = {
        "tiny": ESConfig(hidden=(32,), max_epochs=12, patience=3),
        "cpu": ESConfig(hidden=(256, 256), max_epochs=60),
        "gpu": ESConfig(hidden=(1024, 1024), max_epochs=60),
    }
    metrics = {
        "stop_epoch": "epoch (from 0) at which the real run stopped",
        "restored_minus_last": "test accuracy of the restored best weights minus the last ones', in [-1, 1]",
        "snapshot_step_share": "median time of a step() that snapshots / of one training epoch",
    }
    claims = (
        metric("stop_epoch", "<=", 30, text="patience 5 stops the digits MLP within half of its 60-epoch budget"),
        metric("restored_minus_last", ">=", 0.0, text="the restored best weights score >= the last ones on test"),
        metric("snapshot_step_share", "<=", 0.01, text="a step() with a snapshot costs <= 1 % of a training epoch"),
    )
    mutants = tuple(
        Mutant(name, what, {"stopper": lambda self, *a, cls=cls: cls(*a)}, match=match)
        for name, what, cls, match in (
            ("off_by_one", "stops after patience + 1 bad epochs", OffByOne, "stopped at epoch"),
            ("no_restore", "restore() leaves the last weights", NoRestore, "restored tensor differs"),
            ("snapshot_without_clone", "keeps the live state_dict()", SnapshotWithoutClone, "restored tensor differs"),
            ("parameters_only", "BN buffers not snapshotted", ParametersOnly, "running_"),
            ("min_delta_ignored", "min_delta ignored", MinDeltaIgnored, "min_delta 0.02"),
            ("equal_improves", "<= instead of <", EqualImproves, "equal is no improvement"),
        )
    )

    def stopper(self, patience: int, min_delta: float = 0.0, mode: str = "min"):
        """The implementation under test (tests replace it with planted bugs)."""
        return EarlyStopping(patience, min_delta, mode)

    def model(self, cfg: ESConfig, ctx) -> nn.Module:
        torch.manual_seed(ctx.rng_seed)
        mlp = MLP(MLPConfig(in_features=64, hidden=cfg.hidden, out_features=10, batch_norm=True))
        return mlp.to(ctx.device, ctx.dtype)

    def train_epoch(self, model, opt, train, cfg: ESConfig, epoch: int, seed: int):
        return fit(model, opt, train, batch_size=cfg.batch_size, epochs=1, seed=seed + epoch)

    # -- check ---------------------------------------------------------------------------
    def check(self, ctx) -> None:
        for name, values, patience, delta, mode, want_stop, want_best in SCRIPTED:
            es = self.stopper(patience, delta, mode)
            stop = next((e for e, v in enumerate(values) if es.step(v)), None)
            ctx.expect(
                stop == want_stop,
                f"{name}: stopped at epoch {stop}, expected {want_stop} "
                f"(patience {patience}, min_delta {delta}, mode {mode}, values {values})",
                name="stop epoch",
            )
            ctx.expect(
                es.best_epoch == want_best,
                f"{name}: best epoch {es.best_epoch}, expected {want_best}",
                name="best epoch",
            )
        # restore: train for real, validation values scripted, every epoch's weights kept independently
        cfg = ctx.configs[0]
        name, values, patience, delta, mode, want_stop, want_best = SCRIPTED[0]
        train, _, _ = digits_splits(ctx.rng_seed, ctx.device, ctx.dtype)
        model = self.model(cfg, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        es, snapshots = self.stopper(patience, delta, mode), []
        for epoch, v in enumerate(values):
            self.train_epoch(model, opt, train, cfg, epoch, ctx.rng_seed)
            snapshots.append({k: t.detach().clone() for k, t in model.state_dict().items()})
            if es.step(v, model):
                break
        last, best = snapshots[-1], snapshots[want_best]
        es.restore(model)
        restored = model.state_dict()
        for k in best:
            ctx.expect(
                torch.equal(restored[k], best[k]),
                f"{k}: restored tensor differs from the snapshot of best epoch {want_best}",
                name="restores best weights",
            )
        moved = any(not torch.equal(last[k], best[k]) for k in best)
        why = f"no weight moved between epoch {want_best} and the stop: restoring cannot be told from not restoring"
        ctx.expect(moved, why, name="weights moved after the best epoch")
        ctx.expect_raises(ValueError, lambda: self.stopper(0), match="patience", name="rejects patience 0")
        ctx.expect_raises(ValueError, lambda: self.stopper(3, -0.1), match="min_delta", name="rejects min_delta < 0")
        ctx.expect_raises(ValueError, lambda: self.stopper(3, 0.0, "up"), match="mode", name="rejects unknown mode")
        no_snapshot = lambda: self.stopper(3).restore(model)  # noqa: E731 (named for reading)
        ctx.expect_raises(RuntimeError, no_snapshot, match="snapshot", name="restore without a snapshot")

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ESConfig) -> Prepared:
        train, val, _ = digits_splits(ctx.rng_seed, ctx.device, ctx.dtype)
        model = self.model(config, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        if impl == "train_epoch":
            n = train[1].shape[0] // config.batch_size * config.batch_size
            epoch = lambda: self.train_epoch(model, opt, train, config, 0, ctx.rng_seed)  # noqa: E731 (named for reading)
            return Prepared(fn=epoch, items=n, item_unit="samples")
        es = self.stopper(10**9)
        es.step(1.0, model)
        if impl == "step_improvement":  # every value a new best: a snapshot each call
            counter = iter(range(10**12))
            return Prepared(fn=lambda: es.step(-float(next(counter)), model))
        return Prepared(fn=lambda: es.step(2.0, model))

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        train, val, test = digits_splits(ctx.rng_seed, ctx.device, ctx.dtype)
        model = self.model(cfg, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        es = self.stopper(cfg.patience)
        epoch_fn = lambda epoch: self.train_epoch(model, opt, train, cfg, epoch, ctx.rng_seed)  # noqa: E731 (named for reading)
        run = train_with_early_stopping(model, epoch_fn, val, es, cfg.max_epochs)
        for series, ys in (("train", run.train_loss), ("validation", run.val_loss)):
            ctx.curve("loss per epoch", list(range(len(ys))), ys, x_label="epoch", y_label="loss", series=series)
        last_acc = evaluate(model, *test)[0]
        es.restore(model)
        ctx.metric("stop_epoch", es.stopped_epoch if es.stopped_epoch is not None else math.nan)
        ctx.metric("best_epoch", es.best_epoch)
        ctx.metric("test_accuracy_restored", evaluate(model, *test)[0])
        ctx.metric("restored_minus_last", evaluate(model, *test)[0] - last_acc)
        ms = {impl: ctx.measure(impl, self.prepare(ctx, impl, cfg), config=cfg) for impl in self.variants}
        # a share of an epoch, not a speedup: the two do unlike work on purpose
        ctx.metric("snapshot_step_share", ms["step_improvement"].median_ms / ms["train_epoch"].median_ms)
