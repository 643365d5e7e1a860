"""m4 triton_matmul: the interpreter check passes and catches planted kernel bugs."""

import re

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("m4.triton_matmul")

pytestmark = pytest.mark.skipif(capabilities.missing(["triton"]) != [], reason="needs triton")

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")


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
    """Tutorial-style tile loop with the classic bug: K // BLOCK_K steps, tail never added."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K // BLOCK_K):  # floor, not cdiv: the last K % BLOCK_K columns are lost
        kk = k * BLOCK_K + rk
        a = tl.load(a_ptr + rm[:, None] * sam + kk[None, :] * sak, mask=rm[:, None] < M, other=0.0)
        b = tl.load(b_ptr + kk[:, None] * sbk + rn[None, :] * sbn, mask=rn[None, :] < N, other=0.0)
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    tl.store(
        c_ptr + rm[:, None] * scm + rn[None, :] * scn,
        acc.to(c_ptr.dtype.element_ty),
        mask=(rm[:, None] < M) & (rn[None, :] < N),
    )


def matmul_no_k_tail(a, b, block=32):
    if a.dim() == 3:
        return torch.stack([matmul_no_k_tail(x, y, block) for x, y in zip(a, b)])
    (M, K), N = a.shape, b.shape[1]
    c = torch.empty(M, N, dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(M, block), triton.cdiv(N, block))
    _matmul_no_k_tail[grid](
        a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK_M=block, BLOCK_N=block, BLOCK_K=block
    )
    return c


def test_check_passes_in_the_interpreter():
    rec = run_check(Task)
    names = {re.sub(r" \((float32|bfloat16)\)$", "", n) for n in rec.checks}  # per-dtype entries
    assert {"torch_matmul", "triton", "rejects mismatched inner dimensions", "rejects mixed dtypes"} <= names
    assert all(c["passed"] for c in rec.checks.values())
    # one entry per dtype now: seeds x shapes each
    assert sum(c["n"] for k, c in rec.checks.items() if k.startswith("triton (")) == 2 * 3 * len(Task.sizes["tiny"])


def test_the_planted_kernel_is_right_where_k_is_a_tile_multiple():
    # so the check below fails because of the tail and nothing else
    a, b = torch.randn(40, 64), torch.randn(64, 50)
    torch.testing.assert_close(matmul_no_k_tail(a, b), a @ b, rtol=1e-5, atol=1e-4)


def test_kernel_that_skips_the_k_tail_is_caught():
    wrong = planted(Task, "triton", lambda self, a, b: lambda: matmul_no_k_tail(a, b))
    expect_check_fails(wrong, match="triton [100x70@70x90", dtype=torch.float32)


def test_tf32_precision_is_caught_by_the_fp32_tolerance():
    def tf32_like(self, a, b):
        # round inputs to TF32's 10-bit mantissa, as tensor cores do with allow_tf32
        def rnd(t):
            return (t.view(torch.int32) + 0x1000 & ~0x1FFF).view(torch.float32) if t.dtype == torch.float32 else t

        return lambda: torch.matmul(rnd(a), rnd(b))

    expect_check_fails(planted(Task, "triton", tf32_like), match="triton", dtype=torch.float32)
