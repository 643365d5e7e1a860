"""The distillation loss with temperature, two ways, and a small student-training loop.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (NIPS deep learning
workshop 2015, arXiv:1503.02531), section 2: the student matches the teacher's softened
distribution p_t = softmax(z_t / T) with its own q = softmax(z_s / T), and the soft term is
multiplied by T^2 "since the magnitudes of the gradients produced by the soft targets scale as
1/T^2"; a weighted cross-entropy with the true labels is added:

    L = alpha T^2 KL(p_t || q) + (1 - alpha) CE(z_s, y),   KL averaged over the batch.

Shapes: logits (B, C) float, labels (B,) int64; every loss returns a scalar.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss_by_hand(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, T: float, alpha: float):
    """The formula written out: sums over classes of p_t (log p_t - log q), then the batch mean."""
    log_q = student / T - torch.logsumexp(student / T, dim=-1, keepdim=True)  # (B, C)
    log_p = teacher / T - torch.logsumexp(teacher / T, dim=-1, keepdim=True)  # (B, C)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    ce = -(student - torch.logsumexp(student, -1, keepdim=True)).gather(1, labels[:, None]).mean()
    return alpha * T * T * kl + (1 - alpha) * ce


def kd_loss_one(student: list[float], teacher: list[float], label: int, T: float, alpha: float) -> float:
    """The loss of ONE sample in plain Python floats (``math`` only, no torch): softmaxes, the KL
    sum and the cross-entropy spelled out, a reading of the formula independent of both tensor forms.

    ``student``, ``teacher``: the C logits; ``label`` in [0, C).
    """

    def softmax(z: list[float], temp: float) -> list[float]:
        return [math.exp(v / temp) / sum(math.exp(u / temp) for u in z) for v in z]

    p, q = softmax(teacher, T), softmax(student, T)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    ce = -math.log(softmax(student, 1.0)[label])
    return alpha * T * T * kl + (1 - alpha) * ce


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, T: float, alpha: float):
    """The same loss through ``F.kl_div`` (``batchmean`` is the per-sample KL averaged: the
    mathematically right reduction; ``mean`` would also divide by the number of classes)."""
    soft = F.kl_div(
        F.log_softmax(student / T, -1), F.log_softmax(teacher / T, -1), reduction="batchmean", log_target=True
    )
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student, labels)


def soft_grad_ratio(loss_fn, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, lo: float, hi: float):
    """Norm of the soft term's gradient w.r.t. the ``student`` logits (B, C) at T = ``hi`` over its
    norm at T = ``lo`` (``loss_fn(student, teacher, labels, T, alpha=1.0)``: the soft term alone).

    With the T^2 factor the ratio stays near 1; without it, it falls to about (lo / hi)^2, since
    "the magnitudes of the gradients produced by the soft targets scale as 1/T^2" (Hinton et al.
    2015, section 2). Returns a float.
    """
    z = student.detach().clone().requires_grad_()
    norm_lo, norm_hi = (float(torch.autograd.grad(loss_fn(z, teacher, labels, T, 1.0), z)[0].norm()) for T in (lo, hi))
    return norm_hi / norm_lo


def train_student(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    seed: int,
    loss_fn=kd_loss,
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    T: float = 4.0,
    alpha: float = 0.9,
    batch: int = 64,
) -> nn.Module:
    """Adam on minibatches of (x (N, D), y (N,)); with a teacher (live module or cached logits
    (N, C)) the loss is ``loss_fn``, without one plain cross-entropy. Returns the model."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        out = model(x[idx])
        if teacher is not None:
            with torch.no_grad():
                t = teacher(x[idx])
            loss = loss_fn(out, t, y[idx], T, alpha)
        elif teacher_logits is not None:
            loss = loss_fn(out, teacher_logits[idx], y[idx], T, alpha)
        else:
            loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model
