"""Learning-rate schedules by hand: closed-form functions plus small optimizer drivers.

Closed forms (t = number of ``step()`` calls so far, starting at 0; lr in the optimizer's
units):

- step:    lr(t) = base * gamma ** floor(t / step_size)          (torch StepLR)
- cosine:  lr(t) = eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2
           (Loshchilov & Hutter 2017, SGDR, without restarts; torch CosineAnnealingLR)
- warmup:  lr(t) = base (f0 + (1 - f0) t / W) for t < W          (torch LinearLR)
- warmup + cosine: the warmup for t < W, then the cosine over T = total - W steps; held
  at eta_min after ``total`` (the usual recipe, Goyal et al. 2017 for the warmup).

torch's CosineAnnealingLR uses a recursive formula in ``get_lr``: each step rescales the
group's *current* lr, lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t / T)) /
(1 + cos(pi (t - 1) / T)), and past T_max keeps following the cosine back up (period
2 T_max). Left alone it equals the closed form up to rounding (~1e-17 here); after the lr is
changed by hand mid-schedule the two part ways: the recursion scales the new lr (T_max=10,
base 1, lr halved at t=3: 0.327254 at t=4), the closed form ignores it (0.654508).
``CosineAnnealingLR`` below uses the recursion so it equals torch there too, and
``cosine_annealing_lr`` stays the closed form, the contrast. ``warmup_cosine_lr`` holds
eta_min after ``total`` (what training recipes want), so it equals torch's SequentialLR
only on [0, total].

The driver classes mirror the torch protocol: construction sets lr(0) on every param
group (and stores ``initial_lr`` as torch does), ``step()`` advances t and sets lr(t),
``get_last_lr()`` returns the current lrs. They work with any torch.optim.Optimizer,
including the ones in kernels/optim/optimizers.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "step_lr",
    "cosine_annealing_lr",
    "linear_warmup_lr",
    "warmup_cosine_lr",
    "LRSchedule",
    "StepLR",
    "CosineAnnealingLR",
    "WarmupCosineLR",
]


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def step_lr(t: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """base_lr * gamma ** (t // step_size). step_size >= 1."""
    _check_int("step_size", step_size, 1)
    return base_lr * gamma ** (t // step_size)


def cosine_annealing_lr(t: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    """eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2; periodic past T_max."""
    _check_int("T_max", T_max, 1)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2


def linear_warmup_lr(t: int, base_lr: float, warmup_steps: int, start_factor: float) -> float:
    """base_lr (f0 + (1 - f0) min(t, W) / W): linear ramp from f0 base_lr to base_lr."""
    _check_int("warmup_steps", warmup_steps, 0)
    if warmup_steps == 0:
        return base_lr
    return base_lr * (start_factor + (1 - start_factor) * min(t, warmup_steps) / warmup_steps)


def warmup_cosine_lr(
    t: int, base_lr: float, warmup_steps: int, total_steps: int, start_factor: float = 0.1, eta_min: float = 0.0
) -> float:
    """Linear warmup over ``warmup_steps``, cosine to ``eta_min`` at ``total_steps``, then
    held at eta_min. Needs 0 <= warmup_steps < total_steps and 0 < start_factor <= 1."""
    _check_int("warmup_steps", warmup_steps, 0)
    _check_int("total_steps", total_steps, warmup_steps + 1)
    if not 0 < start_factor <= 1:
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
    if t < warmup_steps:
        return linear_warmup_lr(t, base_lr, warmup_steps, start_factor)
    if t >= total_steps:
        return eta_min
    return cosine_annealing_lr(t - warmup_steps, base_lr, total_steps - warmup_steps, eta_min)


class LRSchedule:
    """Set ``group['lr'] = lr_at(t, base_lr)`` on every param group at each step.

    optimizer: any torch.optim.Optimizer. lr_at: (t, base_lr) -> lr. base_lr of a group is
    its ``initial_lr`` if present (set by an earlier scheduler), else its current lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int, float], float]):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a torch.optim.Optimizer")
        self.optimizer = optimizer
        self.lr_at = lr_at
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def _apply(self) -> None:
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(self.last_epoch, base)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one step (call after ``optimizer.step()``, as with torch schedulers)."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The lr of each param group set by the latest step (or construction)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = list(state["base_lrs"])
        self._apply()


class StepLR(LRSchedule):
    """Decay by ``gamma`` every ``step_size`` steps (equals torch StepLR)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        _check_int("step_size", step_size, 1)
        super().__init__(optimizer, lambda t, base: step_lr(t, base, step_size, gamma))


class CosineAnnealingLR(LRSchedule):
    """Cosine from base_lr to eta_min over T_max steps (equals torch CosineAnnealingLR).

    ``step()`` applies torch's recursive update to each group's current lr (module
    docstring), so an lr changed by hand mid-schedule is annealed from, as in torch.
    Construction and ``load_state_dict`` set the closed form at ``last_epoch`` (torch's
    ``get_lr`` does the same on a scheduler's first step from a nonzero epoch).
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        _check_int("T_max", T_max, 1)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, lambda t, base: cosine_annealing_lr(t, base, T_max, eta_min))

    def step(self) -> None:
        """Advance one step with torch's recursion on the current lr of each group."""
        self.last_epoch += 1
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            if (t - 1 - T) % (2 * T) == 0:
                # the previous step sat at the trough, where the ratio below is 0/0: torch adds
                # the first step of the way back up instead
                g["lr"] = g["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2
            else:
                ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                g["lr"] = ratio * (g["lr"] - lo) + lo
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        # the recursion continues from the current lrs, so they travel with the state (torch
        # keeps them as ``_last_lr``; its optimizer state_dict carries them too)
        return {**super().state_dict(), "last_lr": list(self._last_lr)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # closed form at last_epoch
        if "last_lr" in state:
            for g, lr in zip(self.optimizer.param_groups, state["last_lr"]):
                g["lr"] = lr
            self._last_lr = list(state["last_lr"])


class WarmupCosineLR(LRSchedule):
    """Linear warmup from start_factor*base_lr, then cosine to eta_min at total_steps.

    On [0, total_steps] equals torch's SequentialLR(LinearLR(start_factor, total_iters=W),
    CosineAnnealingLR(T_max=total-W, eta_min), milestones=[W]).
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, start_factor: float = 0.1, eta_min: float = 0.0):
        warmup_cosine_lr(0, 1.0, warmup_steps, total_steps, start_factor, eta_min)  # validate
        super().__init__(
            optimizer, lambda t, base: warmup_cosine_lr(t, base, warmup_steps, total_steps, start_factor, eta_min)
        )
