"""Loss functions written by hand from elementwise torch ops (autograd derives backward).

- ``huber_loss`` equals ``torch.nn.functional.huber_loss`` (Huber 1964; PyTorch doc
  ``torch.nn.HuberLoss``) for every reduction and any delta > 0.
- ``cross_entropy`` equals ``torch.nn.functional.cross_entropy``: class-index targets with
  ``ignore_index``, ``label_smoothing`` and class ``weight``; class-probability targets;
  inputs (C,), (N, C) and (N, C, d1, ..., dk); every reduction.

The normalisation rules follow ATen's ``cross_entropy_loss_label_smoothing``
(aten/src/ATen/native/LossNLL.cpp): with ``reduction='mean'`` *both* the NLL term and the
smoothing term are divided by the summed weight of the non-ignored targets, and the
smoothing term of an ignored position is 0.

Bad input raises ValueError (shape mismatch, with both shapes in the message; bad
reduction, delta or label_smoothing), TypeError (wrong dtypes) or IndexError (a class
index outside [0, C) that is not ``ignore_index``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["huber_loss", "cross_entropy", "log_softmax"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction; use one of {_REDUCTIONS}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss: 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta), d = input - target.

    input, target: same shape (no broadcasting: a silent broadcast is a classic bug),
    same floating dtype. Returns a tensor of that shape (reduction='none') or a 0-d tensor.
    Raises ValueError for mismatched shapes (both shown), delta <= 0 or a bad reduction;
    TypeError for non-floating input.
    """
    _check_reduction(reduction)
    if not (isinstance(input, Tensor) and isinstance(target, Tensor)):
        raise TypeError("huber_loss expects tensors for input and target")
    if input.shape != target.shape:
        raise ValueError(
            f"huber_loss: input shape {tuple(input.shape)} and target shape "
            f"{tuple(target.shape)} differ; reshape one of them (no broadcasting here)"
        )
    if not input.is_floating_point():
        raise TypeError(f"huber_loss expects a floating-point input, got {input.dtype}")
    if not delta > 0:
        raise ValueError(f"huber_loss needs delta > 0, got {delta}")
    diff = input - target
    absd = diff.abs()
    # Both branches are finite everywhere, so where() passes clean gradients; at
    # |d| == delta the linear branch is taken, as in ATen (the two agree there anyway).
    loss = torch.where(absd < delta, 0.5 * diff * diff, delta * (absd - 0.5 * delta))
    return _reduce(loss, reduction)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """log softmax = x - max - log(sum(exp(x - max))) along ``dim``.

    The max is detached: the expression is exactly independent of it, and detaching avoids
    routing a (cancelling) subgradient through amax.
    """
    if x.dim() and x.shape[dim] == 0:
        return x - x  # an empty dim: amax has no identity; torch returns the empty tensor
    m = x.amax(dim=dim, keepdim=True).detach()
    shifted = x - m
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def _check_ce_shapes(input: Tensor, target: Tensor, weight: Tensor | None) -> tuple[int, int, bool]:
    """Validate shapes; return (class_dim, n_classes, target_is_probabilities)."""
    if not (isinstance(input, Tensor) and isinstance(target, Tensor)):
        raise TypeError("cross_entropy expects tensors for input and target")
    if not input.is_floating_point():
        raise TypeError(f"cross_entropy expects floating-point logits, got {input.dtype}")
    if input.dim() == 0:
        raise ValueError("cross_entropy: input must have a class dimension, got a 0-d tensor")
    cdim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[cdim]
    if target.is_floating_point():
        if target.shape != input.shape:
            raise ValueError(
                f"cross_entropy with class-probability targets needs target shape equal to "
                f"input shape; got input {tuple(input.shape)} and target {tuple(target.shape)}"
            )
        probs = True
    else:
        if target.dtype == torch.bool or target.is_complex():
            raise TypeError(f"cross_entropy: class-index targets must be integer, got {target.dtype}")
        expected = input.shape[:cdim] + input.shape[cdim + 1 :]
        if target.shape != expected:
            raise ValueError(
                f"cross_entropy: input shape {tuple(input.shape)} needs class-index target "
                f"shape {tuple(expected)} (input shape without the class dim {cdim}), "
                f"got target shape {tuple(target.shape)}"
            )
        probs = False
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(
            f"cross_entropy: weight must have shape ({n_classes},) for input shape "
            f"{tuple(input.shape)}, got {tuple(weight.shape)}"
        )
    return cdim, n_classes, probs


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy from logits, equal to ``F.cross_entropy`` with the same arguments.

    input: logits (C,), (N, C) or (N, C, d1, ..., dk), floating.
    target: class indices (), (N) or (N, d1, ..., dk), integer, each in [0, C) or equal to
      ``ignore_index``; or class probabilities with input's shape, floating.
    weight: optional (C,) per-class weights (the rescaling of ``nn.CrossEntropyLoss``).
    label_smoothing: eps in [0, 1]; the target becomes (1 - eps) one_hot + eps / C
      (Szegedy et al. 2016, "Rethinking the Inception Architecture").
    Returns per-element losses (reduction='none', target's shape) or a 0-d tensor.
    'mean' with class indices divides by the summed weight of non-ignored targets (NaN if
    every target is ignored, with a zero gradient, as torch); with probabilities it divides by N * d1 * ... * dk.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    cdim, n_classes, probs = _check_ce_shapes(input, target, weight)
    logp = log_softmax(input, cdim)  # same shape as input
    # weight reshaped to broadcast along the class dim: (C,) or (C, 1, ..., 1)
    w_b = None
    if weight is not None:
        w_b = weight.reshape((n_classes,) + (1,) * (input.dim() - cdim - 1))

    if probs:
        tgt = target
        if label_smoothing > 0:
            tgt = target * (1 - label_smoothing) + label_smoothing / n_classes
        per = logp * tgt if w_b is None else logp * tgt * w_b
        loss = -per.sum(dim=cdim)  # input shape without the class dim
        if reduction == "mean":
            # divide by the number of positions N * d1 * ... (NaN for an empty batch, as torch)
            return loss.sum() / (input.numel() // max(n_classes, 1))
        return _reduce(loss, reduction)

    valid = target != ignore_index  # (N, d1, ...)
    safe = torch.where(valid, target, torch.zeros((), dtype=target.dtype))
    if valid.any():
        bad = safe[valid]
        if bool(((bad < 0) | (bad >= n_classes)).any()):
            first = int(bad[(bad < 0) | (bad >= n_classes)][0])
            raise IndexError(
                f"cross_entropy: target {first} is out of bounds for {n_classes} classes "
                f"(and is not ignore_index={ignore_index})"
            )
    picked = logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)  # target's shape
    validf = valid.to(input.dtype)
    w_t = validf if weight is None else weight[safe] * validf  # weight of each target, 0 if ignored
    nll = -picked * w_t
    if label_smoothing > 0:
        per_class = logp if w_b is None else logp * w_b
        # Ignored positions contribute no smoothing term either (ATen masks it to 0).
        smooth = -per_class.sum(dim=cdim) * validf
    else:
        smooth = torch.zeros_like(nll)
    eps = label_smoothing
    if reduction == "none":
        return (1 - eps) * nll + (eps / n_classes) * smooth
    total = (1 - eps) * nll.sum() + (eps / n_classes) * smooth.sum()
    if reduction == "sum":
        return total
    denom = w_t.sum()
    # Every target ignored: the value is NaN (0/0) as in torch, but the gradient must be 0 as
    # torch's is, not 0 * inf = NaN; the NaN comes from a constant branch of `where`, whose
    # other branch divides by 1 and receives a zero gradient.
    empty = denom == 0
    safe_denom = torch.where(empty, torch.ones_like(denom), denom)
    return torch.where(empty, torch.full_like(total, float("nan")), total / safe_denom)
