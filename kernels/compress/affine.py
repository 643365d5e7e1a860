"""Affine (uniform) quantization written out, the arithmetic every int8/int4 flow shares.

An affine quantizer maps a real x to an integer q in [qmin, qmax] with a scale s > 0 and an
integer zero point z (the integer that stands for real 0)::

    q = clamp(round_half_even(x * (1 / s) + z), qmin, qmax)        x_hat = (q - z) * s

(Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, eq. 1.) The order of operations is ``torch.quantize_per_tensor``'s (fbgemm's
vectorised quantizer): multiply by the float32 reciprocal, add the zero point, then round half to
even. ``round(x / s) + z`` differs from it on exact ties when z is odd (x / s = -9.5, z = 3: -7
against torch's -6) and, through the reciprocal, on a few near-ties in 10^5.
Fake quantization is x -> x_hat in floating point; its gradient is the straight-through estimator
(Bengio et al. 2013; Jacob et al. 2018 section 3): 1 where x / s + z lands inside [qmin, qmax]
after rounding, 0 where the clamp is active, which is what ``torch.fake_quantize_per_tensor_affine``
implements.
"""

from __future__ import annotations

import warnings

import torch


def _check_range(qmin: int, qmax: int) -> None:
    if qmin >= qmax:
        raise ValueError(f"quantization range needs qmin < qmax, got [{qmin}, {qmax}]")


def minmax_qparams(lo: float, hi: float, qmin: int, qmax: int) -> tuple[float, int]:
    """Asymmetric (scale, zero_point) covering [min(lo, 0), max(hi, 0)] with qmin..qmax.

    The range is widened to include 0 so that real 0 (ReLU outputs, padding) is exact.
    Returns (scale float > 0, zero_point int in [qmin, qmax]). Raises ValueError for qmin >= qmax.
    """
    _check_range(qmin, qmax)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max((hi - lo) / (qmax - qmin), 1e-12)  # a constant-zero tensor still gets a valid scale
    zero_point = int(min(max(qmin - round(lo / scale), qmin), qmax))
    return scale, zero_point


def symmetric_qparams(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel symmetric scales for a weight (out, in), torchao's convention.

    scale_c = max_j |w_cj| / ((qmax - qmin) / 2) with qmin = -2^(b-1), qmax = 2^(b-1) - 1
    (torchao ``choose_qparams_affine`` with ``MappingType.SYMMETRIC``; zero point 0).
    Returns float32 (out, 1). Raises ValueError for a weight that is not 2-D or bits outside 2..8.
    """
    if w.dim() != 2:
        raise ValueError(f"symmetric_qparams expects a 2-D weight (out, in), got shape {tuple(w.shape)}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    amax = w.detach().abs().amax(dim=1, keepdim=True).float()  # (out, 1)
    return (amax / ((qmax - qmin) / 2)).clamp_min(torch.finfo(torch.float32).eps)


def quantize(x: torch.Tensor, scale: float | torch.Tensor, zero_point: int | torch.Tensor, qmin: int, qmax: int):
    """q = clamp(round_half_even(x * (1 / scale) + zero_point), qmin, qmax) as int32, x's shape.

    ``scale``/``zero_point`` are scalars or tensors broadcasting against x (per channel: (C, 1));
    the reciprocal is taken in float32, as torch does.
    """
    _check_range(qmin, qmax)
    inv = 1.0 / torch.as_tensor(scale, dtype=torch.float32)
    return torch.clamp(torch.round(x * inv + zero_point), qmin, qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: float | torch.Tensor, zero_point: int | torch.Tensor) -> torch.Tensor:
    """x_hat = (q - zero_point) * scale as float32, same shape as q."""
    return (q.to(torch.float32) - zero_point) * scale


def torch_quantized(x: torch.Tensor, scale: float, zero_point: int, dtype: torch.dtype):
    """The reference: ``torch.quantize_per_tensor(x, scale, zero_point, dtype)`` (``torch.quint8`` or
    ``torch.qint8``) as (its integers int32, x's shape; its dequantized float32 values).

    Quantized dtypes are deprecated too (torch warns on use); they remain the reference, so the
    warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.quantize_per_tensor(x, scale, zero_point, dtype)
        return ref.int_repr().to(torch.int32), ref.dequantize()


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x * (1.0 / torch.as_tensor(scale, dtype=x.dtype)) + zero_point)
        ctx.save_for_backward((q >= qmin) & (q <= qmax))  # where the clamp is not active
        return (torch.clamp(q, qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None  # straight through inside, 0 where clamped


def fake_quantize(x: torch.Tensor, scale, zero_point, qmin: int, qmax: int) -> torch.Tensor:
    """dequantize(quantize(x)) in x's dtype with the straight-through gradient (module docstring)."""
    _check_range(qmin, qmax)
    return _FakeQuant.apply(x, scale, zero_point, qmin, qmax)
