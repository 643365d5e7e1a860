"""kernels.triton.softmax in the Triton interpreter: odd row lengths, stacked rows,
large magnitudes, -inf, gradients, errors, and a planted naive softmax caught."""

from __future__ import annotations

import importlib

import pytest
import torch

pytest.importorskip("triton")
from harness.checks import compare  # noqa: E402
from kernels.triton import softmax, softmax_bwd, softmax_fwd  # noqa: E402
from kernels.triton.softmax import MAX_N  # noqa: E402

# CPU tensors under the interpreter (this machine); CUDA when triton compiles for a GPU
DEVICE = "cpu" if importlib.import_module("kernels.triton").INTERPRETER else "cuda"


def _x(shape, dtype=torch.float32, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).to(DEVICE, dtype)


def _check(actual, expected, **tol):
    c = compare(actual, expected, **tol)
    assert c.passed, c.message


_FP32 = dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(7, 100), (3, 5, 37), (4, 5000), (2, 1), (1000, 3)])
def test_forward_and_backward(shape):
    x = _x(shape).requires_grad_()
    dy = _x(shape, seed=1)
    y = softmax(x)
    (dx,) = torch.autograd.grad(y, x, dy)
    yr = torch.softmax(x.double(), -1)
    (dxr,) = torch.autograd.grad(yr, x, dy.double())
    _check((y, dx), (yr.float(), dxr.float()), **_FP32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(dtype):
    x = _x((9, 50), dtype)
    y = softmax_fwd(x)
    assert y.dtype == dtype
    _check(y, torch.softmax(x.float(), -1).to(dtype))
    dy = _x((9, 50), dtype, seed=2)
    _check(softmax_bwd(y, dy), torch._softmax_backward_data(dy.float(), y.float(), -1, torch.float32).to(dtype))


def test_stability_large_and_inf():
    x = torch.tensor([[1000.0, -1000.0, 0.0, float("-inf")], [88.0, 89.0, 90.0, 91.0]], device=DEVICE)
    y = softmax_fwd(x)
    assert torch.isfinite(y).all()
    _check(y, torch.softmax(x, -1), **_FP32)


def test_strided_rows_and_input_unchanged():
    x = _x((6, 40))[:, ::2]  # (6, 20), column stride 2
    x0 = x.clone()
    _check(softmax_fwd(x), torch.softmax(x, -1), **_FP32)
    assert torch.equal(x, x0)
    xt = _x((20, 6)).t()  # (6, 20) with column stride 6: the launcher copies it
    _check(softmax_fwd(xt), torch.softmax(xt, -1), **_FP32)


def test_errors():
    with pytest.raises(ValueError, match="do not fit one block"):
        softmax_fwd(torch.zeros(1, MAX_N + 1, device=DEVICE))
    with pytest.raises(ValueError, match="N >= 1"):
        softmax_fwd(torch.zeros(3, 0, device=DEVICE))
    with pytest.raises(TypeError, match="dtype"):
        softmax_fwd(torch.zeros(3, 4, dtype=torch.int32, device=DEVICE))
    with pytest.raises(ValueError, match="shape"):
        softmax_bwd(torch.zeros(3, 4, device=DEVICE), torch.zeros(3, 5, device=DEVICE))


def test_planted_naive_softmax_is_caught():
    x = _x((4, 30), scale=40.0)  # logits up to ~150: exp overflows in fp32 without the max
    ref = torch.softmax(x, -1)
    _check(softmax_fwd(x), ref, **_FP32)
    naive = torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
    assert not compare(naive, ref, **_FP32).passed
    wrong_dim = torch.softmax(x, 0)
    assert not compare(wrong_dim, ref, **_FP32).passed
