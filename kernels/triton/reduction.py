"""Two-stage sum reduction in Triton: whole tensor, or along one dimension.

Stage 1 splits every row into ``C`` chunks and writes one fp32 partial sum per
(row, chunk); stage 2 runs the same kernel on the (rows, C) partials with one chunk.
Several programs per row keep the GPU full when there are few rows (a whole-tensor sum
is one row of ``numel`` elements); several rows per program keep it busy when rows are
short.  The order of additions is fixed by the launch shape, so results are
deterministic (no atomics).  Within a program each of the BLOCK_N lanes accumulates a
strided subsequence and ``tl.sum`` then adds the lanes as a tree, which bounds rounding
error far below a sequential fp32 sum.

Source: the classic two-pass reduction (Harris, "Optimizing Parallel Reduction in
CUDA", 2007) written with Triton block reductions (tutorial 02's row-wise ``tl.max``).

Shape-suffix legend: ``_m`` over BLOCK_M rows, ``_n`` over BLOCK_N columns,
``_mn`` a (BLOCK_M, BLOCK_N) tile.

Work: n - 1 additions for n elements; bytes ~ n * itemsize read (+ 4 bytes per
partial, written and read once).  Bandwidth-bound: on an H200 (4.8 TB/s HBM3e) the
ceiling is n * itemsize / 4.8e12 seconds.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import INTERPRETER, check_device, check_float, device_guard, num_programs_hint

__all__ = ["triton_sum", "sum_lastdim", "sum_all"]

#: Elements one program loads per loop step (BLOCK_M * BLOCK_N): 4096 fp32 over 8 warps
#: is four 16-byte loads a thread in flight.
_TILE = 4096
#: Interpreter tile: every loop step costs Python time, bigger steps mean fewer of them.
_TILE_INTERP = 1024


@triton.jit
def _sum_rows_kernel(
    X,
    OUT,
    M,
    N,
    stride_xm,
    stride_xn,
    stride_om,
    chunk,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """OUT[m, c] = sum(X[m, c*chunk : (c+1)*chunk]) in fp32; grid (cdiv(M, BLOCK_M), C)."""
    rows_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    pid_c = tl.program_id(1)
    row_mask_m = rows_m < M
    row_ptrs = X + rows_m.to(tl.int64)[:, None] * stride_xm  # (BLOCK_M, 1)
    # int64 column indices: a whole-tensor sum is one row of up to numel elements
    start = pid_c.to(tl.int64) * chunk
    end = tl.minimum(start + chunk, N)
    acc_mn = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for off in range(0, chunk, BLOCK_N):
        cols_n = start + off + tl.arange(0, BLOCK_N)
        mask_mn = row_mask_m[:, None] & (cols_n[None, :] < end)
        acc_mn += tl.load(row_ptrs + cols_n[None, :] * stride_xn, mask=mask_mn, other=0.0).to(tl.float32)
    tl.store(OUT + rows_m.to(tl.int64) * stride_om + pid_c, tl.sum(acc_mn, axis=1), mask=row_mask_m)


def _plan(m: int, n: int, chunks: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, chunk, n_chunks) to cut M rows of N into <= ``chunks`` pieces."""
    tile = _TILE_INTERP if INTERPRETER else _TILE
    block_n = min(triton.next_power_of_2(triton.cdiv(n, chunks)), tile)
    block_m = min(max(1, tile // block_n), triton.next_power_of_2(m))
    # chunk: a multiple of BLOCK_N, so every chunk starts on a block boundary; rounding
    # up can leave fewer chunks than asked, hence n_chunks
    chunk = triton.cdiv(triton.cdiv(n, chunks), block_n) * block_n
    return block_m, block_n, chunk, triton.cdiv(n, chunk)


def _launch(x2: torch.Tensor, chunks: int) -> torch.Tensor:
    """Sum each row of ``x2`` (M, N) in up to ``chunks`` pieces: (M, n_chunks) fp32."""
    m, n = x2.shape
    block_m, block_n, chunk, n_chunks = _plan(m, n, chunks)
    out = torch.empty((m, n_chunks), dtype=torch.float32, device=x2.device)  # (M, C)
    grid = (triton.cdiv(m, block_m), n_chunks)
    with device_guard(x2):
        _sum_rows_kernel[grid](
            x2,
            out,
            m,
            n,
            x2.stride(0),
            x2.stride(1),
            out.stride(0),
            chunk,
            BLOCK_M=block_m,
            BLOCK_N=block_n,
            num_warps=8 if block_m * block_n >= 4096 else 4,
        )
    return out


def _sum_rows(x2: torch.Tensor, chunks: int | None = None) -> torch.Tensor:
    """(M, N) -> (M,) fp32 row sums, two stages when rows are long and few."""
    m, n = x2.shape
    if m == 0 or n == 0:
        return torch.zeros(m, dtype=torch.float32, device=x2.device)
    if chunks is None:
        tile = _TILE_INTERP if INTERPRETER else _TILE
        # aim for ~4 waves of programs over the SMs; split rows only if that needs it
        # and every piece still streams at least 8 tiles
        want = 4 * num_programs_hint(x2.device)
        row_blocks = triton.cdiv(m, max(1, tile // triton.next_power_of_2(n)))
        chunks = max(1, min(triton.cdiv(want, row_blocks), n // (8 * tile)))
    part = _launch(x2, chunks)  # (M, C)
    if part.shape[1] == 1:
        return part.view(m)
    return _launch(part, 1).view(m)  # (M, 1) -> (M,)


def triton_sum(
    x: torch.Tensor, dim: int | None = None, *, dtype: torch.dtype | None = None, chunks: int | None = None
) -> torch.Tensor:
    """``torch.sum(x)`` / ``torch.sum(x, dim)`` with fp32 accumulation.

    Args:
        x: any shape, float16/bfloat16/float32, any strides.
        dim: None for the whole tensor (0-d result), or one dimension (negative allowed).
            The reduced dim is moved last; that view is passed by strides when it
            flattens to 2-D, otherwise copied once (``reshape``).
        dtype: result dtype (default x.dtype, as torch.sum); the sum is fp32 either way.
        chunks: stage-1 pieces per row (>= 1); default: enough programs for ~4 waves on
            the device.  ``chunks > 1`` forces the second stage.
    Returns:
        A new tensor: 0-d for ``dim=None``, else x's shape without ``dim``.
    Raises:
        TypeError: non-float x.  IndexError: dim out of range.  ValueError: CPU tensor
        without the interpreter.
    """
    check_float("x", x)
    check_device("x", x)
    out_dtype = x.dtype if dtype is None else dtype
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1):
        raise ValueError(f"chunks must be an int >= 1 or None, got {chunks!r}")
    if dim is None:
        x2 = x.reshape(1, -1)  # (1, numel)
        return _sum_rows(x2, chunks).view(()).to(out_dtype)
    if not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        raise IndexError(f"dim {dim} out of range for a tensor of {x.dim()} dimensions")
    if x.dim() == 0:
        return x.to(out_dtype).clone()
    dim = dim % x.dim()
    xt = x.movedim(dim, -1)  # (..., N)
    out_shape = xt.shape[:-1]
    x2 = xt.reshape(math.prod(out_shape), xt.shape[-1])  # (M, N): a view when strides allow, else a copy
    return _sum_rows(x2, chunks).view(out_shape).to(out_dtype)


def sum_all(x: torch.Tensor) -> torch.Tensor:
    """Whole-tensor sum; see :func:`triton_sum`."""
    return triton_sum(x)


def sum_lastdim(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension, (..., N) -> (...); see :func:`triton_sum`."""
    return triton_sum(x, -1)
