"""Wrong distillation losses: the mutants of advanced.distillation (each one a plausible mistake).

Each has :func:`kernels.distill.loss.kd_loss`'s signature ``(student (B, C), teacher (B, C),
labels (B,), T, alpha) -> scalar``; the task's check must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.distill.loss import kd_loss


def no_t_squared(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """WRONG: the soft term without the T^2 factor (its gradient shrinks as 1/T^2)."""
    return kd_loss(s, t, y, T, alpha) - alpha * (T * T - 1) * kd_loss(s, t, y, T, 1.0) / (T * T)


def reversed_kl(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """WRONG: KL(student || teacher) instead of KL(teacher || student)."""
    soft = F.kl_div(F.log_softmax(t / T, -1), F.log_softmax(s / T, -1), reduction="batchmean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def mean_reduction(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """WRONG: ``F.kl_div(reduction="mean")``: divides by B * C, not B."""
    soft = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="mean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def hard_teacher(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """WRONG: softmax(z_t), the teacher's distribution never softened by T."""
    return kd_loss(s, t * T, y, T, alpha)
