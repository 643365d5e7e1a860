"""WRONG on purpose: a tutorial-style Triton GEMM with the classic K-tail bug, the mutant that
m4.triton_matmul's check must reject.

The tile loop runs ``K // BLOCK_K`` steps (floor, not cdiv), so the last ``K % BLOCK_K``
products of every dot product are silently dropped; where K is a multiple of the tile the
result is right, which is why the check's shapes put K one past and one short of a tile.
It lives in a module of its own because ``@triton.jit`` needs module-level source.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _matmul_no_k_tail(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    sam,
    sak,
    sbk,
    sbn,
    scm,
    scn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K // BLOCK_K):  # WRONG: floor, not cdiv: the last K % BLOCK_K columns are lost
        kk = k * BLOCK_K + rk
        a = tl.load(a_ptr + rm[:, None] * sam + kk[None, :] * sak, mask=rm[:, None] < M, other=0.0)
        b = tl.load(b_ptr + kk[:, None] * sbk + rn[None, :] * sbn, mask=rn[None, :] < N, other=0.0)
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(c_ptr + rm[:, None] * scm + rn[None, :] * scn, acc.to(c_ptr.dtype.element_ty), mask=mask)


def matmul_no_k_tail(a: torch.Tensor, b: torch.Tensor, block: int = 32) -> torch.Tensor:
    """a (M, K) @ b (K, N), or batched (B, M, K) @ (B, K, N), dropping the K tail (WRONG)."""
    if a.dim() == 3:
        return torch.stack([matmul_no_k_tail(x, y, block) for x, y in zip(a, b, strict=True)])
    (m, k), n = a.shape, b.shape[1]
    c = torch.empty(m, n, dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(m, block), triton.cdiv(n, block))
    _matmul_no_k_tail[grid](
        a, b, c, m, n, k, *a.stride(), *b.stride(), *c.stride(), BLOCK_M=block, BLOCK_N=block, BLOCK_K=block
    )
    return c
