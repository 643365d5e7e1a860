"""LayerNorm + dropout with the Philox mask: the reference every fused backend must equal, the
drop-rate test, and the differentiable fused versions that exist on a device.

The mask is a written contract (:mod:`kernels.rng.philox`): element i of a row-major (M, N)
tensor is kept when Philox-4x32-10 of ``(seed, i)`` is at least p, exactly as ``tl.rand``
draws it, so the CPU extension, Triton and CUDA kernels and this reference drop the same
elements. Used by m3.fused_ln_dropout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kernels.rng import philox


def ln_dropout_reference(x, w, b, p: float, seed: int, eps: float = 1e-5) -> torch.Tensor:
    """F.layer_norm of x (M, N) in float64, then the Philox keep-mask, scaled by 1 / (1 - p).

    Differentiable; returns float64 (M, N).
    """
    y = F.layer_norm(x.double(), (x.shape[-1],), w.double(), b.double(), eps)
    if p == 0.0:
        return y
    keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return torch.where(keep, y * scale, torch.zeros((), dtype=y.dtype, device=y.device))


def drop_rate_ok(kept: torch.Tensor, p: float) -> tuple[bool, float, float]:
    """(dropped fraction within 5 sigma + 1 element of p?, dropped fraction, allowed deviation)."""
    n = kept.numel()
    frac = 1.0 - kept.float().mean().item()
    tol = 5 * math.sqrt(p * (1 - p) / n) + 1.0 / n
    return abs(frac - p) <= tol, frac, tol


def fused_autograd_versions(device: torch.device, *, triton: bool) -> dict[str, Callable]:
    """name -> differentiable fused function (x, w, b, p, seed) -> y for ``device``.

    ``cpp_fused`` on the CPU, ``cuda_fused`` on CUDA, ``triton_fused`` when ``triton`` is available.
    """
    out: dict[str, Callable] = {}
    if device.type == "cpu":
        from kernels import cpp

        out["cpp_fused"] = cpp.layer_norm_dropout
    if triton:
        from kernels.triton import fused_layernorm_dropout

        out["triton_fused"] = fused_layernorm_dropout
    if device.type == "cuda":
        from kernels import cuda

        out["cuda_fused"] = cuda.layer_norm_dropout
    return out
