"""kernels.triton.wrong: the TF32 rounding the tf32_inputs mutant of m4.triton_matmul plants."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")
from kernels.triton.wrong import matmul_tf32_inputs, round_to_tf32  # noqa: E402


def test_round_to_tf32_keeps_ten_mantissa_bits():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    r = round_to_tf32(x)
    assert r.dtype == x.dtype and r.shape == x.shape
    assert (r.view(torch.int32) & 0x1FFF == 0).all()  # the 13 low mantissa bits are cleared
    rel = ((r - x).abs() / x.abs()).max().item()
    assert 0 < rel <= 2**-11  # round to nearest: at most half a TF32 ulp
    exact = torch.tensor([1.0, 1.5, -0.75, 1 + 2**-10])  # already representable in TF32
    assert torch.equal(round_to_tf32(exact), exact)


def test_other_dtypes_pass_through_and_the_matmul_is_off_by_tf32_error():
    h = torch.randn(4, 4).to(torch.bfloat16)
    assert round_to_tf32(h) is h
    a, b = torch.randn(33, 70), torch.randn(70, 41)
    err = (matmul_tf32_inputs(a, b) - a @ b).abs().max().item()
    assert 1e-4 < err < 1e-1  # over an fp32 check's atol, far under a wrong-axis bug
