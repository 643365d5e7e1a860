"""Update math of the hand-written optimizers in ``kernels/optim/optimizers.py``.

Two versions of each rule:

- ``*_single``: loop over parameters, a handful of in-place tensor ops each.
- ``*_foreach``: the same ops on lists via ``torch._foreach_*``, after grouping tensors by
  (device, dtype) because a foreach kernel needs one device and dtype per list.

The op order follows torch/optim (torch 2.13) so results agree to rounding: e.g. the first
moment uses ``lerp_`` (m + w (g - m) with w = 1 - beta1, the same EMA as
beta1 m + (1 - beta1) g), and Adam's denominator is sqrt(v) / sqrt(1 - beta2^t) + eps.
Gradients are never modified in place (``p.grad`` is left as the backward pass wrote it).
All functions run under the caller's ``torch.no_grad()``; tensors in each list are aligned.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

__all__ = [
    "sgd_single",
    "sgd_foreach",
    "adam_single",
    "adam_foreach",
    "rmsprop_single",
    "rmsprop_foreach",
    "group_by_device_dtype",
]


def group_by_device_dtype(params: list[Tensor]) -> list[list[int]]:
    """Indices of ``params`` grouped by (device, dtype), in first-seen order."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, p in enumerate(params):
        groups[(p.device, p.dtype)].append(i)
    return list(groups.values())


def _pick(xs: list, idx: list[int]) -> list:
    return [xs[i] for i in idx]


# --------------------------------------------------------------------------- SGD


def sgd_single(params, grads, bufs, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD step per tensor. ``bufs[i]`` is None before the first momentum step and is
    replaced in the list by the new buffer (a copy of the first gradient)."""
    for i, p in enumerate(params):
        g = grads[i] if not maximize else -grads[i]
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        if momentum != 0:
            buf = bufs[i]
            if buf is None:
                buf = bufs[i] = g.detach().clone()
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            # Nesterov looks ahead along the *updated* buffer: g + momentum * b_t.
            g = g.add(buf, alpha=momentum) if nesterov else buf
        p.add_(g, alpha=-lr)


def sgd_foreach(params, grads, bufs, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD step with torch._foreach_* ops; same contract as ``sgd_single``."""
    for idx in group_by_device_dtype(params):
        ps = _pick(params, idx)
        gs = _pick(grads, idx)
        if maximize:
            gs = torch._foreach_neg(gs)
        if weight_decay != 0:
            gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        if momentum != 0:
            old = [j for j in idx if bufs[j] is not None]
            if old:
                ob = _pick(bufs, old)
                torch._foreach_mul_(ob, momentum)
                pos = {j: k for k, j in enumerate(idx)}
                torch._foreach_add_(ob, [gs[pos[j]] for j in old], alpha=1 - dampening)
            for k, j in enumerate(idx):
                if bufs[j] is None:  # first step: the buffer starts as the gradient
                    bufs[j] = gs[k].detach().clone()
            bs = _pick(bufs, idx)
            gs = torch._foreach_add(gs, bs, alpha=momentum) if nesterov else bs
        torch._foreach_add_(ps, gs, alpha=-lr)


# --------------------------------------------------------------------------- Adam


def adam_single(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    maximize,
    decoupled_weight_decay,
):
    """Adam/AdamW step per tensor. ``steps[i]`` is the step count *after* incrementing
    (1 on the first step). ``max_exp_avg_sqs`` is None unless AMSGrad."""
    for i, p in enumerate(params):
        g = grads[i] if not maximize else -grads[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                p.mul_(1 - lr * weight_decay)
            else:
                g = g.add(p, alpha=weight_decay)
        m.lerp_(g, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v <- beta2 v + (1 - beta2) g^2
        t = steps[i]
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        step_size = lr / bias_correction1
        if max_exp_avg_sqs is not None:
            torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            v = max_exp_avg_sqs[i]
        denom = (v.sqrt() / bias_correction2**0.5).add_(eps)  # sqrt(v_hat) + eps
        p.addcdiv_(m, denom, value=-step_size)


def adam_foreach(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    maximize,
    decoupled_weight_decay,
):
    """Adam/AdamW step with torch._foreach_* ops; same contract as ``adam_single``.

    Step counts may differ between tensors (a parameter that had no gradient on some
    step), so bias corrections are per-tensor scalar lists.
    """
    for idx in group_by_device_dtype(params):
        ps = _pick(params, idx)
        gs = _pick(grads, idx)
        ms = _pick(exp_avgs, idx)
        vs = _pick(exp_avg_sqs, idx)
        if maximize:
            gs = torch._foreach_neg(gs)
        if weight_decay != 0:
            if decoupled_weight_decay:
                torch._foreach_mul_(ps, 1 - lr * weight_decay)
            else:
                gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        torch._foreach_lerp_(ms, gs, 1 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
        ts = _pick(steps, idx)
        step_sizes = [-(lr / (1 - beta1**t)) for t in ts]
        bc2_sqrt = [(1 - beta2**t) ** 0.5 for t in ts]
        if max_exp_avg_sqs is not None:
            mx = _pick(max_exp_avg_sqs, idx)
            torch._foreach_maximum_(mx, vs)
            vs = mx
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(ps, ms, denom, step_sizes)


# --------------------------------------------------------------------------- RMSprop


def rmsprop_single(
    params, grads, square_avgs, grad_avgs, momentum_bufs, *, lr, alpha, eps, weight_decay, momentum, maximize
):
    """RMSprop step per tensor. ``grad_avgs`` is None unless centered; ``momentum_bufs``
    is None unless momentum > 0."""
    for i, p in enumerate(params):
        g = grads[i] if not maximize else -grads[i]
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        sq = square_avgs[i]
        sq.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if grad_avgs is not None:
            ga = grad_avgs[i]
            ga.lerp_(g, 1 - alpha)
            avg = sq.addcmul(ga, ga, value=-1).sqrt_()  # sqrt(E[g^2] - E[g]^2)
        else:
            avg = sq.sqrt()
        avg = avg.add_(eps)
        if momentum_bufs is not None:
            buf = momentum_bufs[i]
            buf.mul_(momentum).addcdiv_(g, avg)
            p.add_(buf, alpha=-lr)
        else:
            p.addcdiv_(g, avg, value=-lr)


def rmsprop_foreach(
    params, grads, square_avgs, grad_avgs, momentum_bufs, *, lr, alpha, eps, weight_decay, momentum, maximize
):
    """RMSprop step with torch._foreach_* ops; same contract as ``rmsprop_single``."""
    for idx in group_by_device_dtype(params):
        ps = _pick(params, idx)
        gs = _pick(grads, idx)
        sqs = _pick(square_avgs, idx)
        if maximize:
            gs = torch._foreach_neg(gs)
        if weight_decay != 0:
            gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        torch._foreach_mul_(sqs, alpha)
        torch._foreach_addcmul_(sqs, gs, gs, value=1 - alpha)
        if grad_avgs is not None:
            gas = _pick(grad_avgs, idx)
            torch._foreach_lerp_(gas, gs, 1 - alpha)
            avg = torch._foreach_addcmul(sqs, gas, gas, value=-1)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(sqs)
        torch._foreach_add_(avg, eps)
        if momentum_bufs is not None:
            bs = _pick(momentum_bufs, idx)
            torch._foreach_mul_(bs, momentum)
            torch._foreach_addcdiv_(bs, gs, avg)
            torch._foreach_add_(ps, bs, alpha=-lr)
        else:
            torch._foreach_addcdiv_(ps, gs, avg, value=-lr)
