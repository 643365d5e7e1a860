"""Fused LayerNorm + Dropout in Triton: forward, mask-free backward, autograd Function.

``out = dropout(layer_norm(x) * weight + bias)`` over the last dimension N, where the
dropout keep-mask is drawn from ``tl.rand(seed, offset)`` with ``offset`` the row-major
element index ``row * N + col`` of the logical (M, N) view.  The mask is never stored:
the backward regenerates it from the seed (Triton tutorial 04 "Low-Memory Dropout"),
so the saved state is x, weight, mean and rstd ((M,) each) instead of an (M, N) mask.
The generator and the keep rule (``u > float32(p)``; ``p == 0`` skips the draw) are
specified in :mod:`kernels.rng.philox`, which :func:`layernorm_dropout_reference` uses.

Sources: Triton tutorials 05 "Layer Normalization" (forward, dx, dw/db partial sums)
and 04 "Low-Memory Dropout"; Ba et al. 2016 for the LayerNorm gradient:
``xhat = (x - mean) * rstd``, ``g = dy_kept * w``,
``dx = rstd * (g - mean_N(g * xhat) * xhat - mean_N(g))``,
``dw = sum_M(dy_kept * xhat)``, ``db = sum_M(dy_kept)``.

Shape-suffix legend: ``_m`` a vector over BLOCK_M rows, ``_n`` over BLOCK_N columns,
``_mn`` a (BLOCK_M, BLOCK_N) tile; ``rows64`` are row indices widened to int64 so
``row * stride`` and ``row * N`` do not wrap past 2**31 elements.

Work (per element, fp32 math): forward reads x and writes y (2 * itemsize bytes/elem
plus 2 weight vectors), about 8 FLOP + one Philox (10 rounds); backward reads x, dy,
writes dx (3 * itemsize bytes/elem) plus P x N fp32 partials written and re-read.

Limits: a row must fit one block (N <= 32768; 16384 for float64).  Compiled for sm_90
(tests/kernels/test_triton_sm90_compile.py), forward and backward hold N = 8192 in
registers without spilling; from N = 16384 the backward, which keeps two (N,) fp32
accumulators live across its row loop, spills (~400 B a thread): still correct, below
bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.rng import philox

from ._common import (
    INTERPRETER,
    MAX_FUSED_N,
    check_device,
    check_float,
    check_seed,
    device_guard,
    num_programs_hint,
    row_tile,
)

__all__ = [
    "fused_layernorm_dropout",
    "layernorm_dropout_bwd",
    "layernorm_dropout_fwd",
    "layernorm_dropout_reference",
]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@triton.jit
def _ln_dropout_fwd_kernel(
    X,
    Y,
    W,
    B,
    MEAN,
    RSTD,
    M,
    N,
    stride_xm,
    stride_ym,
    eps,
    p,
    scale,
    seed,
    HAS_DROPOUT: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """BLOCK_M whole rows per program: one read of x, one write of y."""
    rows_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_n = tl.arange(0, BLOCK_N)
    row_mask_m = rows_m < M
    col_mask_n = cols_n < N
    mask_mn = row_mask_m[:, None] & col_mask_n[None, :]
    rows64 = rows_m.to(tl.int64)

    x_mn = tl.load(X + rows64[:, None] * stride_xm + cols_n[None, :], mask=mask_mn, other=0.0).to(ACC)
    mean_m = tl.sum(x_mn, axis=1) / N
    # two-pass variance from registers: no E[x^2] - E[x]^2 cancellation
    xc_mn = tl.where(mask_mn, x_mn - mean_m[:, None], 0.0)
    var_m = tl.sum(xc_mn * xc_mn, axis=1) / N
    rstd_m = 1.0 / tl.sqrt(var_m + eps)

    w_n = tl.load(W + cols_n, mask=col_mask_n, other=0.0).to(ACC)
    b_n = tl.load(B + cols_n, mask=col_mask_n, other=0.0).to(ACC)
    y_mn = xc_mn * rstd_m[:, None] * w_n[None, :] + b_n[None, :]
    if HAS_DROPOUT:
        # the element's row-major index is its Philox counter (kernels/rng/philox.py)
        u_mn = tl.rand(seed, rows64[:, None] * N + cols_n[None, :])
        y_mn = tl.where(u_mn > p, y_mn * scale, 0.0)

    tl.store(Y + rows64[:, None] * stride_ym + cols_n[None, :], y_mn.to(Y.dtype.element_ty), mask=mask_mn)
    tl.store(MEAN + rows_m, mean_m, mask=row_mask_m)
    tl.store(RSTD + rows_m, rstd_m, mask=row_mask_m)


@triton.jit
def _ln_dropout_bwd_kernel(
    X,
    DY,
    DX,
    W,
    MEAN,
    RSTD,
    DW_PART,
    DB_PART,
    M,
    N,
    stride_xm,
    stride_dym,
    stride_dxm,
    p,
    scale,
    seed,
    HAS_DROPOUT: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Persistent over row tiles pid, pid + P, ...: dx per row, dw/db partial sums per
    program written to DW_PART[pid], DB_PART[pid] (reduced by _ln_dwdb_kernel)."""
    pid = tl.program_id(0)
    num_progs = tl.num_programs(0)
    cols_n = tl.arange(0, BLOCK_N)
    col_mask_n = cols_n < N
    dw_mn = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    db_mn = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for tile in range(pid, tl.cdiv(M, BLOCK_M), num_progs):
        rows_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
        row_mask_m = rows_m < M
        mask_mn = row_mask_m[:, None] & col_mask_n[None, :]
        rows64 = rows_m.to(tl.int64)
        x_mn = tl.load(X + rows64[:, None] * stride_xm + cols_n[None, :], mask=mask_mn, other=0.0).to(ACC)
        dy_mn = tl.load(DY + rows64[:, None] * stride_dym + cols_n[None, :], mask=mask_mn, other=0.0).to(ACC)
        mean_m = tl.load(MEAN + rows_m, mask=row_mask_m, other=0.0)
        rstd_m = tl.load(RSTD + rows_m, mask=row_mask_m, other=0.0)
        if HAS_DROPOUT:
            # same counters as the forward: the mask is recomputed, never loaded
            u_mn = tl.rand(seed, rows64[:, None] * N + cols_n[None, :])
            dy_mn = tl.where(u_mn > p, dy_mn * scale, 0.0)
        xhat_mn = tl.where(mask_mn, (x_mn - mean_m[:, None]) * rstd_m[:, None], 0.0)
        # weight re-read per tile (an L1/L2 hit) rather than held: at N = 16384 the two
        # accumulators alone take 64 registers a thread over 16 warps
        w_n = tl.load(W + cols_n, mask=col_mask_n, other=0.0).to(ACC)
        g_mn = dy_mn * w_n[None, :]
        c1_m = tl.sum(g_mn * xhat_mn, axis=1) / N
        c2_m = tl.sum(g_mn, axis=1) / N
        dx_mn = (g_mn - (xhat_mn * c1_m[:, None] + c2_m[:, None])) * rstd_m[:, None]
        tl.store(DX + rows64[:, None] * stride_dxm + cols_n[None, :], dx_mn.to(DX.dtype.element_ty), mask=mask_mn)
        dw_mn += dy_mn * xhat_mn
        db_mn += dy_mn
    tl.store(DW_PART + pid * N + cols_n, tl.sum(dw_mn, axis=0), mask=col_mask_n)
    tl.store(DB_PART + pid * N + cols_n, tl.sum(db_mn, axis=0), mask=col_mask_n)


@triton.jit
def _ln_dwdb_kernel(DW_PART, DB_PART, DW, DB, P, N, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """Column sums of the (P, N) partials: dw[n] = sum_p DW_PART[p, n]; fixed order, so
    the result is deterministic (no atomics)."""
    cols_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask_n = cols_n < N
    dw_pn = tl.zeros((BLOCK_P, BLOCK_N), dtype=DW_PART.dtype.element_ty)
    db_pn = tl.zeros((BLOCK_P, BLOCK_N), dtype=DB_PART.dtype.element_ty)
    for start in range(0, P, BLOCK_P):
        rows_p = start + tl.arange(0, BLOCK_P)
        mask_pn = (rows_p[:, None] < P) & col_mask_n[None, :]
        offs_pn = rows_p[:, None] * N + cols_n[None, :]
        dw_pn += tl.load(DW_PART + offs_pn, mask=mask_pn, other=0.0)
        db_pn += tl.load(DB_PART + offs_pn, mask=mask_pn, other=0.0)
    tl.store(DW + cols_n, tl.sum(dw_pn, axis=0).to(DW.dtype.element_ty), mask=col_mask_n)
    tl.store(DB + cols_n, tl.sum(db_pn, axis=0).to(DB.dtype.element_ty), mask=col_mask_n)


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
    return p


def _dropout_args(p: float) -> tuple[bool, float]:
    """(HAS_DROPOUT, scale): p == 0 skips the RNG; p == 1 scales by 0 (torch gives zeros)."""
    return p > 0.0, (0.0 if p == 1.0 else 1.0 / (1.0 - p))


def _rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """(..., N) -> (M, N) with unit column stride (copies only if the view cannot)."""
    t2 = t.reshape(-1, n)  # (M, N)
    return t2 if t2.stride(-1) == 1 or t2.shape[0] == 0 else t2.contiguous()


def _acc_dtype(dtype: torch.dtype):
    # fp64 inputs stay fp64 (gradcheck); everything else accumulates in fp32
    return tl.float64 if dtype == torch.float64 else tl.float32


def _check_inputs(x, weight, bias):
    check_float("x", x, _FLOATS)
    check_float("weight", weight, _FLOATS)
    check_float("bias", bias, _FLOATS)
    check_device("x", x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape (..., N) with N >= 1, got {tuple(x.shape)}")
    n = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match x's last dim, got {tuple(t.shape)}")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    max_n = MAX_FUSED_N // (2 if x.dtype == torch.float64 else 1)
    row_tile(n, max_n)  # raises ValueError for rows too long for one block
    return n, max_n


def layernorm_dropout_fwd(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, p: float, seed: int, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward launcher: ``(y, mean, rstd)``.

    Args:
        x: (..., N), float16/bfloat16/float32/float64; last dim N <= 32768 (16384 for
            float64); any leading strides (copied to unit column stride if needed).
        weight, bias: (N,), any float dtype, on x's device.
        p: drop probability in [0, 1]; 0 disables dropout.
        seed: Python int in [0, 2**63); the mask is ``kernels.rng.philox.dropout_mask(seed,
            offsets, p)`` with offsets the row-major indices of x.
        eps: added to the variance (F.layer_norm's default 1e-5).
    Returns:
        y: like x (new, contiguous) in x.dtype; mean, rstd: (M,) float32 (float64 for
        float64 x), M = x.numel() // N.
    Raises:
        TypeError: non-float dtypes or non-int seed.  ValueError: shape mismatch,
        N too large, p outside [0, 1], seed out of range, CPU tensor without interpreter.
    """
    n, max_n = _check_inputs(x, weight, bias)
    p, seed = _check_p(p), check_seed(seed)
    x2 = _rows(x, n)  # (M, N)
    weight, bias = weight.contiguous(), bias.contiguous()  # the kernel reads them at unit stride
    m = x2.shape[0]
    stat_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    y2 = torch.empty((m, n), dtype=x.dtype, device=x.device)
    mean = torch.empty(m, dtype=stat_dtype, device=x.device)
    rstd = torch.empty(m, dtype=stat_dtype, device=x.device)
    if m == 0:
        return y2.view(x.shape), mean, rstd
    block_m, block_n, num_warps = row_tile(n, max_n)
    has_dropout, scale = _dropout_args(p)
    with device_guard(x):
        _ln_dropout_fwd_kernel[(triton.cdiv(m, block_m),)](
            x2,
            y2,
            weight,
            bias,
            mean,
            rstd,
            m,
            n,
            x2.stride(0),
            y2.stride(0),
            float(eps),
            p,
            scale,
            seed,
            HAS_DROPOUT=has_dropout,
            ACC=_acc_dtype(x.dtype),
            BLOCK_M=block_m,
            BLOCK_N=block_n,
            num_warps=num_warps,
        )
    return y2.view(x.shape), mean, rstd


def layernorm_dropout_bwd(
    dy: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    p: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward launcher: ``(dx, dweight, dbias)`` from the forward's saved mean/rstd.

    Args:
        dy: gradient of the output, shape of x, any float dtype; x, weight, p, seed as in
            the forward (the dropout mask is regenerated from ``seed``, never stored);
            mean, rstd: the forward's (M,) statistics.
    Returns:
        dx like x in x.dtype; dweight, dbias (N,) in weight.dtype.  Two launches: a
        persistent kernel over row tiles (P programs, ~2 per SM) writing (P, N) fp32
        partial sums, then a column reduction of the partials (deterministic order).
    Raises:
        as :func:`layernorm_dropout_fwd`; ValueError if dy's or the stats' shapes differ.
    """
    n, max_n = _check_inputs(x, weight, weight)
    p, seed = _check_p(p), check_seed(seed)
    check_float("dy", dy, _FLOATS)
    if dy.shape != x.shape or dy.device != x.device:
        raise ValueError(
            f"dy must match x in shape and device: dy is {tuple(dy.shape)} on {dy.device}, "
            f"x is {tuple(x.shape)} on {x.device}"
        )
    x2 = _rows(x, n)  # (M, N)
    dy2 = _rows(dy, n)  # (M, N)
    m = x2.shape[0]
    if mean.shape != (m,) or rstd.shape != (m,):
        raise ValueError(f"mean and rstd must have shape ({m},), got {tuple(mean.shape)} and {tuple(rstd.shape)}")
    weight, mean, rstd = weight.contiguous(), mean.contiguous(), rstd.contiguous()
    dx2 = torch.empty((m, n), dtype=x.dtype, device=x.device)
    dw = torch.empty(n, dtype=weight.dtype, device=x.device)
    db = torch.empty(n, dtype=weight.dtype, device=x.device)
    if m == 0:
        return dx2.view(x.shape), dw.zero_(), db.zero_()
    block_m, block_n, num_warps = row_tile(n, max_n)
    num_tiles = triton.cdiv(m, block_m)
    # two persistent programs per SM: enough to hide latency while keeping the (P, N)
    # partials small next to the (M, N) traffic
    progs = min(num_tiles, (2 if x.device.type == "cuda" and not INTERPRETER else 1) * num_programs_hint(x.device))
    acc = _acc_dtype(x.dtype)
    part_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    dw_part = torch.empty((progs, n), dtype=part_dtype, device=x.device)  # (P, N)
    db_part = torch.empty((progs, n), dtype=part_dtype, device=x.device)  # (P, N)
    has_dropout, scale = _dropout_args(p)
    with device_guard(x):
        _ln_dropout_bwd_kernel[(progs,)](
            x2,
            dy2,
            dx2,
            weight,
            mean,
            rstd,
            dw_part,
            db_part,
            m,
            n,
            x2.stride(0),
            dy2.stride(0),
            dx2.stride(0),
            p,
            scale,
            seed,
            HAS_DROPOUT=has_dropout,
            ACC=acc,
            BLOCK_M=block_m,
            BLOCK_N=block_n,
            num_warps=num_warps,
        )
        block_p, block_nr = 32, min(128, triton.next_power_of_2(n))
        _ln_dwdb_kernel[(triton.cdiv(n, block_nr),)](
            dw_part,
            db_part,
            dw,
            db,
            progs,
            n,
            BLOCK_P=block_p,
            BLOCK_N=block_nr,
            num_warps=4,
        )
    return dx2.view(x.shape), dw, db


class _LayerNormDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, p, seed, eps, training):
        p_eff = p if training else 0.0
        y, mean, rstd = layernorm_dropout_fwd(x, weight, bias, p_eff, seed, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.p, ctx.seed = p_eff, seed
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = layernorm_dropout_bwd(dy, x, weight, mean, rstd, ctx.p, ctx.seed)
        need = ctx.needs_input_grad
        return (dx if need[0] else None, dw if need[1] else None, db if need[2] else None, None, None, None, None)


def fused_layernorm_dropout(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    p: float,
    seed: int,
    eps: float = 1e-5,
    training: bool = True,
) -> torch.Tensor:
    """``dropout(F.layer_norm(x, (N,), weight, bias, eps), p)`` with a seeded mask, fused.

    Differentiable in x, weight and bias (autograd Function; the backward regenerates
    the mask).  ``training=False`` (or ``p == 0``) is plain LayerNorm.  Same seed, same
    mask: vary ``seed`` per step/layer.  Shapes, dtypes, limits and errors as
    :func:`layernorm_dropout_fwd`.
    """
    return _LayerNormDropout.apply(x, weight, bias, p, seed, eps, training)


def layernorm_dropout_reference(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, p: float, seed: int, eps: float = 1e-5
) -> torch.Tensor:
    """Eager reference: F.layer_norm then the Philox keep-mask of :mod:`kernels.rng.philox`.

    Computes in float32 (float64 for float64 x) and returns x.dtype; differentiable by
    torch autograd, so its gradients are the reference for the fused backward.  The
    mask offsets are ``arange(x.numel())`` viewed as x: the row-major element index.
    """
    p = _check_p(p)
    n = x.shape[-1]
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = torch.nn.functional.layer_norm(x.to(cdt), (n,), weight.to(cdt), bias.to(cdt), eps)
    if p > 0.0:
        keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)
        y = torch.where(keep, y * (0.0 if p == 1.0 else 1.0 / (1.0 - p)), torch.zeros((), dtype=cdt, device=y.device))
    return y.to(x.dtype)
