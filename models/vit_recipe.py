"""The training recipe of a ViT trained from scratch: warmup + cosine LR, label smoothing, AdamW groups.

* :func:`warmup_cosine`: lr(s) = base * (s + 1) / W for s < W, then
  min + (base - min) * (1 + cos(pi * (s - W) / (T - W))) / 2 (Loshchilov & Hutter 2017's cosine,
  after a linear warmup, as in Dosovitskiy et al. 2021 and timm);
* :func:`smoothed_cross_entropy`: (1 - eps) * NLL + eps * mean over all K classes of -log p
  (Szegedy et al. 2016), PyTorch's ``F.cross_entropy(label_smoothing=eps)``;
* :func:`adamw_groups`: weight decay on weight matrices only, none on biases, norm gains, the
  class token and position embeddings (timm's ``no_weight_decay``);
* :class:`RecipeRun`: the recipe's hyperparameters, model and data (research.vit_cifar100's
  config; ``harness.data.vit_images.load_images`` reads its data fields).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class RecipeRun:
    """Model, data and the recipe's hyperparameters."""

    model: str = "tiny"
    """models.vit preset"""
    data: str = "digits"
    """"digits" (real, upsampled) or "cifar100" (real files, else the synthetic stand-in)"""
    n_train: int | None = None
    """training images (None: all)"""
    n_test: int | None = None
    """test images (None: all)"""
    steps: int = 120
    """optimizer steps"""
    warmup: int = 12
    """linear warmup steps"""
    batch_size: int = 64
    """images per step"""
    lr: float = 2e-3
    """peak AdamW learning rate"""
    weight_decay: float = 0.05
    """AdamW decoupled weight decay on the weight matrices"""
    smoothing: float = 0.1
    """label smoothing eps"""
    padding: int = 1
    """pad-crop padding in pixels (4 on 32x32 CIFAR)"""
    flip_p: float = 0.0
    """horizontal flip probability (0.5 on CIFAR; digits are not mirror-symmetric)"""


#: parameter names (suffixes) that never get weight decay, besides every 1-D parameter
NO_DECAY_NAMES = ("cls_token", "pos_embed")


def warmup_cosine(step: int, total: int, warmup: int, base_lr: float, min_lr: float = 0.0) -> float:
    """LR of optimizer step ``step`` (0-based). Raises ValueError unless 0 <= warmup < total."""
    if not 0 <= warmup < total:
        raise ValueError(f"warmup_cosine: need 0 <= warmup ({warmup}) < total ({total})")
    if step < warmup:
        return base_lr * (step + 1) / warmup
    t = (step - warmup) / (total - warmup)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * t))


def make_scheduler(opt: torch.optim.Optimizer, total: int, warmup: int, min_lr: float = 0.0):
    """LambdaLR following :func:`warmup_cosine` for every group (step it once per optimizer step)."""
    base = opt.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup, base, min_lr) / base)


def lr_trace(schedule: Callable, total: int, warmup: int, base_lr: float) -> list[float]:
    """The LR of each of ``total`` optimizer steps of a one-parameter AdamW (lr ``base_lr``) under
    ``schedule(opt, total, warmup)`` (a :func:`make_scheduler`-like factory), read before each step."""
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched, lrs = schedule(opt, total, warmup), []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean label-smoothed cross-entropy of logits (N, K) and int64 targets (N,)."""
    logp = F.log_softmax(logits, -1)  # (N, K)
    nll = -logp.gather(1, target[:, None]).squeeze(1)  # (N,)
    return ((1 - eps) * nll - eps * logp.mean(-1)).mean()  # eps spread over all K classes, the true one too


def adamw_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: {"params", "names", "weight_decay"} with and without decay."""
    decay, no_decay = ([], []), ([], [])
    for name, p in model.named_parameters():
        grp = no_decay if p.ndim <= 1 or name.endswith(NO_DECAY_NAMES) else decay
        grp[0].append(p)
        grp[1].append(name)
    return [
        {"params": decay[0], "names": decay[1], "weight_decay": weight_decay},
        {"params": no_decay[0], "names": no_decay[1], "weight_decay": 0.0},
    ]
