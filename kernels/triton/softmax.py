"""Row softmax in Triton: numerically stable forward, backward, autograd Function.

``y = exp(x - max(x)) / sum(exp(x - max(x)))`` over the last dimension, with each row
held whole in one block (N <= 32768, :data:`MAX_N`), so x is read once and y written
once.  Subtracting the row max keeps ``exp`` <= 1: no overflow for any finite input.

Backward: ``dx = y * (dy - sum_N(dy * y))`` (the softmax Jacobian-vector product),
also one row per block.

Source: Triton tutorial 02 "Fused Softmax" (row per program, -inf padding), with short
rows stacked BLOCK_M to a program and tail rows clamped rather than masked.

Shape-suffix legend: ``_m`` over BLOCK_M rows, ``_n`` over BLOCK_N columns, ``_mn`` a
(BLOCK_M, BLOCK_N) tile.

Work: forward reads N and writes N elements a row (2 * itemsize bytes/elem), ~4 FLOP +
one exp per element; backward reads y and dy, writes dx (3 * itemsize bytes/elem).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import MAX_FUSED_N, check_device, check_float, device_guard, row_tile

__all__ = ["MAX_N", "softmax", "softmax_bwd", "softmax_fwd"]

#: Longest row (elements) a block holds; longer rows raise ValueError.
MAX_N = MAX_FUSED_N


@triton.jit
def _softmax_fwd_kernel(X, Y, M, N, stride_xm, stride_ym, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_n = tl.arange(0, BLOCK_N)
    col_mask_n = cols_n < N
    # tail rows re-read row M-1 instead of being masked: padding rows then hold real
    # numbers (no all -inf row, no NaN) and only the store needs the row mask
    src_m = tl.minimum(rows_m, M - 1).to(tl.int64)
    x_mn = tl.load(X + src_m[:, None] * stride_xm + cols_n[None, :], mask=col_mask_n[None, :], other=-float("inf"))
    x_mn = x_mn.to(tl.float32)
    z_mn = x_mn - tl.max(x_mn, axis=1)[:, None]
    num_mn = tl.exp(z_mn)  # padded columns: exp(-inf) = 0
    y_mn = num_mn / tl.sum(num_mn, axis=1)[:, None]
    mask_mn = (rows_m[:, None] < M) & col_mask_n[None, :]
    tl.store(Y + rows_m.to(tl.int64)[:, None] * stride_ym + cols_n[None, :], y_mn.to(Y.dtype.element_ty), mask=mask_mn)


@triton.jit
def _softmax_bwd_kernel(
    Y, DY, DX, M, N, stride_ym, stride_dym, stride_dxm, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    rows_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_n = tl.arange(0, BLOCK_N)
    mask_mn = (rows_m[:, None] < M) & (cols_n[None, :] < N)
    rows64 = rows_m.to(tl.int64)
    y_mn = tl.load(Y + rows64[:, None] * stride_ym + cols_n[None, :], mask=mask_mn, other=0.0).to(tl.float32)
    dy_mn = tl.load(DY + rows64[:, None] * stride_dym + cols_n[None, :], mask=mask_mn, other=0.0).to(tl.float32)
    dot_m = tl.sum(y_mn * dy_mn, axis=1)
    dx_mn = y_mn * (dy_mn - dot_m[:, None])
    tl.store(DX + rows64[:, None] * stride_dxm + cols_n[None, :], dx_mn.to(DX.dtype.element_ty), mask=mask_mn)


def _rows(t: torch.Tensor) -> torch.Tensor:
    t2 = t.reshape(-1, t.shape[-1])  # (M, N)
    return t2 if t2.stride(-1) == 1 or t2.shape[0] == 0 else t2.contiguous()


def _check(name: str, x: torch.Tensor) -> int:
    check_float(name, x)
    check_device(name, x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., N) with N >= 1, got {tuple(x.shape)}")
    n = x.shape[-1]
    row_tile(n, MAX_N)  # ValueError for rows longer than MAX_N
    return n


def softmax_fwd(x: torch.Tensor) -> torch.Tensor:
    """``torch.softmax(x, dim=-1)``.

    Args:
        x: (..., N), float16/bfloat16/float32, N <= :data:`MAX_N`; any leading strides
            (copied once if the last dim is not unit-stride).
    Returns:
        New contiguous tensor like x in x.dtype (math in fp32).
    Raises:
        TypeError: unsupported dtype.  ValueError: N == 0 or N > MAX_N, CPU tensor
        without the interpreter.
    """
    n = _check("x", x)
    x2 = _rows(x)  # (M, N)
    m = x2.shape[0]
    y2 = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m:
        block_m, block_n, num_warps = row_tile(n, MAX_N)
        with device_guard(x):
            _softmax_fwd_kernel[(triton.cdiv(m, block_m),)](
                x2, y2, m, n, x2.stride(0), y2.stride(0), BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps
            )
    return y2.view(x.shape)


def softmax_bwd(y: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Gradient of softmax: ``dx = y * (dy - (dy * y).sum(-1, keepdim=True))``.

    Args:
        y: the forward output (..., N); dy: its gradient, same shape, float dtype.
    Returns:
        dx like y in y.dtype.
    Raises:
        as :func:`softmax_fwd`; ValueError if shapes differ.
    """
    n = _check("y", y)
    check_float("dy", dy)
    if dy.shape != y.shape or dy.device != y.device:
        raise ValueError(
            f"dy must match y in shape and device: dy is {tuple(dy.shape)} on {dy.device}, "
            f"y is {tuple(y.shape)} on {y.device}"
        )
    y2, dy2 = _rows(y), _rows(dy)  # (M, N) each
    m = y2.shape[0]
    dx2 = torch.empty((m, n), dtype=y.dtype, device=y.device)
    if m:
        block_m, block_n, num_warps = row_tile(n, MAX_N)
        with device_guard(y):
            _softmax_bwd_kernel[(triton.cdiv(m, block_m),)](
                y2,
                dy2,
                dx2,
                m,
                n,
                y2.stride(0),
                dy2.stride(0),
                dx2.stride(0),
                BLOCK_M=block_m,
                BLOCK_N=block_n,
                num_warps=num_warps,
            )
    return dx2.view(y.shape)


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = softmax_fwd(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return softmax_bwd(y, dy)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Differentiable row softmax over the last dim; see :func:`softmax_fwd`."""
    return _Softmax.apply(x)
