"""Early stopping by hand: patience, min_delta, mode, and a snapshot of the best weights.

Rule (as Keras ``EarlyStopping`` and Lightning's ``EarlyStopping`` define it): after each
epoch the monitored value v is an *improvement* when

* mode ``"min"``: v < best - min_delta,
* mode ``"max"``: v > best + min_delta,

(the first finite value always is; NaN never is). An improvement resets the count of bad
epochs and snapshots the model; otherwise the count grows by one, and training stops at
the first epoch where it reaches ``patience``. So with patience P the last improvement is
followed by exactly P bad epochs, and the stop epoch is best_epoch + P.

The snapshot is ``state_dict()`` with every tensor *cloned*: ``state_dict()`` returns the
live parameter and buffer tensors themselves, so keeping it without a copy "restores" the
latest weights (the bug the 3.06 check plants). Buffers (BatchNorm running statistics)
are saved and restored with the parameters. The copy stays on the tensors' device.

Epochs are counted from 0: the first :meth:`EarlyStopping.step` call is epoch 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class EarlyStopping:
    """Track a validation metric; say when to stop; keep and restore the best weights.

    Args:
        patience: bad epochs (no improvement) tolerated; the P-th one stops. Integer >= 1.
        min_delta: how much better than the best a value must be to count (>= 0, in the
            metric's units).
        mode: ``"min"`` for a loss, ``"max"`` for an accuracy.

    Attributes:
        best: best value so far (inf / -inf before the first step).
        best_epoch: epoch of ``best`` (None before any improvement).
        bad_epochs: epochs since the last improvement.
        epoch: epochs seen so far.
        stopped_epoch: the epoch at which ``step`` first returned True, else None.
        best_state: cloned ``state_dict`` at ``best_epoch`` (when a model was passed).

    Raises:
        ValueError: patience < 1 or not an integer, min_delta < 0, unknown mode.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min"):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0 (a distance, for both modes), got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' (loss) or 'max' (accuracy), got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, float(min_delta), mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.epoch = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def is_improvement(self, value: float) -> bool:
        """True when ``value`` beats the best by more than ``min_delta`` (NaN never does)."""
        if math.isnan(value):
            return False
        if self.best_epoch is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record the metric of the epoch just finished; return True when training should stop.

        Args:
            value: the monitored metric (a float, or a one-element tensor).
            model: if given, its weights are snapshotted on an improvement.
        """
        value = float(value)
        epoch = self.epoch
        self.epoch += 1
        if self.is_improvement(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if model is not None:
                self.best_state = self.snapshot(model)
        else:
            self.bad_epochs += 1
        stop = self.bad_epochs >= self.patience
        if stop and self.stopped_epoch is None:
            self.stopped_epoch = epoch
        return stop

    def snapshot(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """A copy of every parameter and buffer: cloned, so later steps cannot change it."""
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module) -> None:
        """Load the snapshot of the best epoch into ``model`` (parameters and buffers).

        Raises:
            RuntimeError: no snapshot was taken (no model was passed to ``step``, or no
                value was ever an improvement).
        """
        if self.best_state is None:
            raise RuntimeError(
                "EarlyStopping.restore: no snapshot; pass the model to step() so the best weights are kept"
            )
        model.load_state_dict(self.best_state)


@dataclasses.dataclass
class EarlyStoppedRun:
    """What :func:`train_with_early_stopping` saw: mean training loss and validation loss per epoch."""

    train_loss: list[float]
    val_loss: list[float]


def train_with_early_stopping(
    model: nn.Module,
    epoch_fn: Callable[[int], Any],
    val: tuple[torch.Tensor, torch.Tensor],
    stopper: EarlyStopping,
    max_epochs: int,
) -> EarlyStoppedRun:
    """Train epoch by epoch until ``stopper`` says stop on the validation loss, or ``max_epochs``.

    Args:
        epoch_fn: trains one epoch given its index; returns a :class:`harness.train.TrainLog`.
        val: validation inputs (N, ...) and labels (N,).
    The model keeps its last weights; call ``stopper.restore(model)`` for the best ones.
    """
    from harness.train import evaluate

    run = EarlyStoppedRun([], [])
    for epoch in range(max_epochs):
        log = epoch_fn(epoch)
        run.train_loss.append(sum(log.losses) / len(log.losses))
        run.val_loss.append(evaluate(model, *val)[1])
        if stopper.step(run.val_loss[-1], model):
            break
    return run
