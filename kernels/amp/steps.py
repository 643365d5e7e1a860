"""One mixed-precision training step with ``torch.amp.GradScaler``, in the documented order, and
two plausible wrong orders (the mutants of advanced.amp).

The documented order (PyTorch docs, "Automatic Mixed Precision examples", "Gradient clipping"):
scale the loss, backward, ``scaler.unscale_(opt)``, clip the now true gradients, ``scaler.step``
(which skips the step when any gradient is inf/NaN), ``scaler.update``. Every function takes
(model, optimizer, scaler, loss (scalar, from a forward under autocast), max_norm (the clip norm)).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import nn


def scaled_step(model: nn.Module, opt: torch.optim.Optimizer, scaler, loss: torch.Tensor, max_norm: float) -> None:
    """The documented order: scale, backward, unscale_, clip, step (skipped on inf), update."""
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(opt)
    scaler.update()


def clipped_step(model: nn.Module, opt: torch.optim.Optimizer, scaler, loss: torch.Tensor, max_norm: float) -> None:
    """The float32 reference of :func:`scaled_step`: backward, clip, step; no scaler (``scaler`` unused)."""
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()


def autocast_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    scaler,
    x: torch.Tensor,
    y: torch.Tensor,
    autocast: Callable[[], AbstractContextManager],
    step_fn: Callable = scaled_step,
    max_norm: float = 1.0,
) -> torch.Tensor:
    """One training step: zero the gradients, cross-entropy of ``model(x)`` (B, C) against ``y`` (B,)
    inside ``autocast()`` (a fresh context manager per call), then ``step_fn(model, opt, scaler, loss,
    max_norm)``. Returns the loss."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = F.cross_entropy(model(x), y)
    step_fn(model, opt, scaler, loss, max_norm)
    return loss


def clip_before_unscale(model: nn.Module, opt: torch.optim.Optimizer, scaler, loss: torch.Tensor, max_norm: float):
    """WRONG: clips the gradients while they are still multiplied by the scale."""
    scaler.scale(loss).backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()


def step_on_inf(model: nn.Module, opt: torch.optim.Optimizer, scaler, loss: torch.Tensor, max_norm: float):
    """WRONG: ``opt.step()`` instead of ``scaler.step(opt)``: steps on inf gradients."""
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    scaler.update()


def expected_scales(bad: list[bool], init: float, interval: int, backoff: float = 0.5, growth: float = 2.0):
    """GradScaler's scale after each step of a run whose steps ``bad[k]`` have inf gradients: times
    ``backoff`` on a bad step, times ``growth`` after ``interval`` clean steps in a row (the count
    restarts after each growth and each bad step). Plain floats; exact for powers of two."""
    scales, scale, clean = [], init, 0
    for is_bad in bad:
        clean = 0 if is_bad else clean + 1
        scale = scale * backoff if is_bad else (scale * growth if clean == interval else scale)
        clean = 0 if clean == interval else clean
        scales.append(scale)
    return scales


def mlp(dim: int, layers: int, classes: int = 10, seed: int | None = None) -> nn.Sequential:
    """``layers`` x (Linear(dim, dim), GELU), LayerNorm(dim), Linear(dim, classes): input (B, dim),
    logits (B, classes), float32, default init drawn after ``torch.manual_seed(seed)`` when a seed
    is given (two calls with one seed build identical weights)."""
    if seed is not None:
        torch.manual_seed(seed)
    blocks = [m for _ in range(layers) for m in (nn.Linear(dim, dim), nn.GELU())]
    return nn.Sequential(*blocks, nn.LayerNorm(dim), nn.Linear(dim, classes))


def cpu_capability_note() -> str:
    """``torch.backends.cpu.get_cpu_capability()`` as a note, saying when it has no native bfloat16
    dot products (AVX2 or DEFAULT: bfloat16 matmuls are emulated, slower than float32)."""
    cap = torch.backends.cpu.get_cpu_capability()
    slow = " (no native bfloat16 dot products: slower than float32)" if cap in ("AVX2", "DEFAULT") else ""
    return f"CPU capability: {cap}{slow}"
