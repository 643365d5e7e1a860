"""A small training run whose every source of state can be saved, left out and compared.

The run touches every kind of state a real one does, so that leaving any of them out of a
checkpoint changes what happens after a resume:

* model weights, with dropout (draws from torch's global RNG);
* AdamW (moment buffers and step counts), a warmup-then-decay ``LambdaLR`` (its position),
  a ``torch.amp.GradScaler`` started near float32's limit so that it overflows, skips
  steps and backs off within a few steps (its scale and growth tracker decide which steps
  are skipped);
* input noise from NumPy's legacy global RNG and a feature dropped at random by Python's
  ``random`` (the way older augmentation code draws);
* the data position: epoch and step in the epoch; each epoch's order is a permutation
  seeded by ``(data_seed, epoch)`` as ``DistributedSampler.set_epoch`` does, so a resumed
  run skips the batches it already took instead of replaying them.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.checkpoint import capture_rng, restore_rng

#: Everything a checkpoint of :class:`ResumableRun` can hold.
ALL_PARTS: tuple[str, ...] = (
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "torch_rng",
    "numpy_rng",
    "python_rng",
    "data",
)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A classification run on a fixed random data set."""

    samples: int = 96
    """items in the data set"""
    batch: int = 16
    """items per step (``samples`` must be a multiple)"""
    features: int = 16
    """input features"""
    hidden: int = 64
    """hidden width of the 2-layer MLP"""
    classes: int = 4
    """output classes"""
    steps: int = 20
    """optimizer steps of the uninterrupted run"""
    stop_at: int = 10
    """steps taken before the interruption (mid-epoch on purpose)"""
    data_seed: int = 7
    """seed of the data set and of each epoch's order"""

    def __post_init__(self) -> None:
        if self.samples % self.batch or not 0 < self.stop_at < self.steps:
            raise ValueError(f"need samples % batch == 0 and 0 < stop_at < steps, got {self}")


def seed_everything(seed: int) -> None:
    """Seed torch's, NumPy's legacy and Python's global RNGs."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def parts_without(*names: str) -> tuple[str, ...]:
    """:data:`ALL_PARTS` less ``names``: a checkpoint that leaves those states out."""
    return tuple(p for p in ALL_PARTS if p not in names)


def started_run(cfg: RunConfig, seed: int, device: torch.device | str, steps: int) -> tuple[ResumableRun, list[float]]:
    """Seed every global RNG with ``seed``, build a :class:`ResumableRun` and train ``steps`` steps;
    returns the run and its losses."""
    seed_everything(seed)
    run = ResumableRun(cfg, seed, device)
    return run, [run.step() for _ in range(steps)]


class ResumableRun:
    """The run: ``step()`` trains one batch; ``state(parts)`` / ``load(state)`` checkpoint it.

    Args:
        cfg: sizes and lengths.
        init_seed: seeds the weights (a resumed run starts from other weights on purpose,
            as a fresh process would).
        device: where the model trains (CPU or CUDA).
    """

    def __init__(self, cfg: RunConfig, init_seed: int, device: torch.device | str = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
        g = torch.Generator().manual_seed(cfg.data_seed)
        self.x = torch.randn(cfg.samples, cfg.features, generator=g)  # (N, F)
        self.y = torch.randint(0, cfg.classes, (cfg.samples,), generator=g)  # (N,)
        torch.manual_seed(init_seed)
        self.model = nn.Sequential(
            nn.Linear(cfg.features, cfg.hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(cfg.hidden, cfg.classes)
        ).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-3, weight_decay=0.01)
        warm = 4  # steps of linear warmup, then 1/sqrt decay: every step has its own LR
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min((s + 1) / warm, (warm / (s + 1)) ** 0.5))
        # scale 2**126 on a summed loss (~20): the scaled loss overflows float32 (3.4e38), so
        # steps are skipped while the scale backs off, and growth every 2 good steps brings the
        # overflow back: which steps are skipped depends on the scaler's state
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=2.0**126, growth_interval=2)
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.skipped = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.cfg.samples // self.cfg.batch

    def order(self, epoch: int) -> torch.Tensor:
        """This epoch's permutation of item indices, (N,) int64."""
        return torch.randperm(
            self.cfg.samples, generator=torch.Generator().manual_seed(self.cfg.data_seed * 1000 + epoch)
        )

    def step(self) -> float:
        """One optimizer step on the next batch; returns the loss (float32 as a float)."""
        b = self.cfg.batch
        idx = self.order(self.epoch)[self.step_in_epoch * b : (self.step_in_epoch + 1) * b]
        x = self.x[idx] + torch.from_numpy(np.random.normal(0.0, 0.1, size=(b, self.cfg.features)).astype(np.float32))
        x[:, random.randrange(self.cfg.features)] = 0.0  # drop one feature, chosen by Python's RNG
        x, y = x.to(self.device), self.y[idx].to(self.device)
        self.model.train()
        loss = F.cross_entropy(self.model(x), y, reduction="sum")  # sum: large enough to overflow
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        before = self.scaler.get_scale()
        self.scaler.step(self.opt)  # skipped when the scaled gradients overflowed
        self.scaler.update()
        self.skipped += self.scaler.get_scale() < before
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" after a skipped step
            warnings.simplefilter("ignore", UserWarning)
            self.sched.step()
        self.global_step += 1
        self.step_in_epoch += 1
        if self.step_in_epoch == self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        return float(loss.detach())

    def state(self, parts: tuple[str, ...] = ALL_PARTS) -> dict[str, Any]:
        """A checkpoint holding ``parts`` (names from :data:`ALL_PARTS`): tensors, numbers, dicts."""
        unknown = set(parts) - set(ALL_PARTS)
        if unknown:
            raise ValueError(f"unknown checkpoint parts {sorted(unknown)}; choose from {ALL_PARTS}")
        out: dict[str, Any] = {"format": 1}
        if "model" in parts:
            out["model"] = self.model.state_dict()
        if "optimizer" in parts:
            out["optimizer"] = self.opt.state_dict()
        if "scheduler" in parts:
            out["scheduler"] = self.sched.state_dict()
        if "scaler" in parts:
            out["scaler"] = self.scaler.state_dict()
        rng = capture_rng(
            torch_rng="torch_rng" in parts, numpy_rng="numpy_rng" in parts, python_rng="python_rng" in parts
        )
        if rng:
            out["rng"] = rng
        if "data" in parts:
            out["data"] = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step}
        return out

    def load(self, state: dict[str, Any]) -> None:
        """Restore whatever ``state`` holds (a part it lacks keeps this run's own value)."""
        if "model" in state:
            self.model.load_state_dict(state["model"])
        if "optimizer" in state:
            self.opt.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.sched.load_state_dict(state["scheduler"])
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            restore_rng(state["rng"])
        if "data" in state:
            d = state["data"]
            self.epoch, self.step_in_epoch, self.global_step = d["epoch"], d["step_in_epoch"], d["global_step"]

    def snapshot(self) -> dict[str, Any]:
        """Everything, for comparing two runs (the full checkpoint, detached copies)."""
        return torch.utils._pytree.tree_map(
            lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v, self.state(ALL_PARTS)
        )


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two nested states differ bit for bit (``"optimizer.state.0.exp_avg"``), or None.

    Tensors must match in dtype, shape and every byte (so ``-0.0`` differs from ``0.0`` and a
    NaN equals the same NaN, unlike ``torch.equal``).
    """
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(_bytes(a), _bytes(b))
        )
        return None if same else (path.lstrip(".") or "<root>")
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}".lstrip(".") + (" (missing on one side)")
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d.lstrip(".")
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path} (length {len(a)} vs {len(b)})".lstrip(".")
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}.{i}")
            if d:
                return d.lstrip(".")
        return None
    return None if a == b else (path.lstrip(".") or "<root>")


def count_differences(a: Any, b: Any) -> int:
    """How many leaves (tensors, numbers) of two nested states differ bit for bit (``first_difference``
    per leaf); a different leaf count counts as that difference plus one."""
    la, lb = torch.utils._pytree.tree_leaves(a), torch.utils._pytree.tree_leaves(b)
    if len(la) != len(lb):
        return abs(len(la) - len(lb)) + 1
    return sum(first_difference(x, y) is not None for x, y in zip(la, lb))


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # (numel * itemsize,) raw bytes


def layered_state(
    state_mb: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """A state dict of ``state_mb`` MB (10**6 bytes) of float32 normal noise, as a model's layers:
    ``layer{i}.weight`` tensors of 1 M elements (4 MB each) and a smaller ``tail`` for the rest."""
    n = 1_000_000
    k, rest = divmod(int(state_mb * 1e6 / 4), n)
    state = {f"layer{i}.weight": torch.randn(n, generator=generator).to(device) for i in range(k)}
    if rest:
        state["tail"] = torch.randn(rest, generator=generator).to(device)
    return state
