"""Gradient clipping by global norm and by value, written by hand.

``clip_grad_norm_`` equals ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``
equals ``torch.nn.utils.clip_grad_value_`` (torch/nn/utils/clip_grad.py), including:

- any p-norm: p > 0, ``inf`` (max |g|), ``-inf`` (min |g|) and 0 (count of non-zeros);
  the total is the p-norm of the vector of per-tensor p-norms, exactly as torch does
  (for p = 0 that is the number of tensors with a non-zero entry);
- parameters whose ``.grad`` is None are skipped; with no gradients at all the total norm
  is ``tensor(0.)`` and nothing is scaled;
- the clip coefficient is min(max_norm / (total + 1e-6), 1); a NaN/inf total either
  raises RuntimeError (``error_if_nonfinite=True``) or is applied as is (NaN gradients).

Pascanu, Mikolov & Bengio 2013 ("On the difficulty of training recurrent neural networks")
introduced clipping by norm against exploding gradients.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor

from kernels.optim.functional import group_by_device_dtype

__all__ = ["vector_norm", "total_grad_norm", "clip_grad_norm_", "clip_grad_value_"]


def vector_norm(x: Tensor, p: float) -> Tensor:
    """p-norm of all entries of ``x`` (any shape) as a 0-d tensor of x's dtype.

    p = inf -> max |x|; p = -inf -> min |x|; p = 0 -> number of non-zeros; else
    (sum |x|^p)^(1/p). An empty tensor has norm 0 for finite p; for p = +-inf it raises
    RuntimeError as torch.linalg.vector_norm does (max/min have no identity element).
    """
    a = x.abs()
    if p in (float("inf"), float("-inf")):
        if a.numel() == 0:
            raise RuntimeError(
                f"cannot compute the {p} norm on an empty tensor because the operation does not have an identity"
            )
        return a.amax() if p > 0 else a.amin()
    if p == 0:
        return (a != 0).sum().to(x.dtype)
    if p == 1:
        return a.sum()
    if p == 2:
        return (a * a).sum().sqrt()
    return a.pow(p).sum().pow(1.0 / p)


def _as_list(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    is_gen = isinstance(parameters, types.GeneratorType)
    params = list(parameters)
    if is_gen and not params:
        warnings.warn(f"`parameters` is an empty generator, no gradient clipping will occur ({fn}).", stacklevel=3)
    return params


@torch.no_grad()
def total_grad_norm(grads: list[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Norm of a list of tensors viewed as one concatenated vector.

    Returns a 0-d tensor on the first tensor's device (``tensor(0.)`` for an empty list).
    Raises RuntimeError if ``error_if_nonfinite`` and the norm is NaN or +-inf.
    """
    norm_type = float(norm_type)
    if not grads:
        return torch.tensor(0.0)
    first_device = grads[0].device
    norms = [vector_norm(g, norm_type).to(first_device) for g in grads]
    total = vector_norm(torch.stack(norms), norm_type)  # stack promotes mixed dtypes like torch
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


@torch.no_grad()
def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool = False,
) -> Tensor:
    """Scale all gradients in place so that their joint ``norm_type``-norm is <= max_norm.

    parameters: a tensor or iterable of tensors (their ``.grad`` is clipped; None skipped).
    max_norm: float, in the units of the gradient. norm_type: p (float or 'inf').
    foreach: scale with one ``torch._foreach_mul_`` per (device, dtype) group instead of a
    per-tensor loop (same result).
    Returns the total norm *before* clipping (0-d tensor).
    """
    params = _as_list(parameters, "clip_grad_norm_")
    grads = [p.grad for p in params if p.grad is not None]
    total = total_grad_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    # 1e-6 keeps the division finite for an all-zero gradient (torch uses the same).
    coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
    for idx in group_by_device_dtype(grads):
        gs = [grads[i] for i in idx]
        c = coef.to(gs[0].device)
        if foreach:
            torch._foreach_mul_(gs, c)
        else:
            for g in gs:
                g.mul_(c)
    return total


@torch.no_grad()
def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool = False) -> None:
    """Clamp every gradient entry in place to [-clip_value, clip_value].

    parameters: a tensor or iterable of tensors (None gradients skipped). A negative
    clip_value is passed through as torch does (clamp_min then clamp_max, so every entry
    becomes clip_value).
    """
    params = _as_list(parameters, "clip_grad_value_")
    clip_value = float(clip_value)
    grads = [p.grad for p in params if p.grad is not None]
    for idx in group_by_device_dtype(grads):
        gs = [grads[i] for i in idx]
        if foreach:
            torch._foreach_clamp_min_(gs, -clip_value)
            torch._foreach_clamp_max_(gs, clip_value)
        else:
            for g in gs:
                g.clamp_(min=-clip_value, max=clip_value)
