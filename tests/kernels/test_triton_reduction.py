"""kernels.triton.reduction in the Triton interpreter: whole-tensor and per-dim sums on
odd sizes, one and two stages, dtypes, strides, empties, errors, planted bugs caught."""

from __future__ import annotations

import importlib

import pytest
import torch

pytest.importorskip("triton")
from harness.checks import compare  # noqa: E402
from kernels.triton import sum_all, sum_lastdim, triton_sum  # noqa: E402

# CPU tensors under the interpreter (this machine); CUDA when triton compiles for a GPU
DEVICE = "cpu" if importlib.import_module("kernels.triton").INTERPRETER else "cuda"


def _x(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(DEVICE, dtype)


def _reference(x, dim=None):
    wide = x.double()
    return (wide.sum() if dim is None else wide.sum(dim)).to(x.dtype)


def _check(actual, expected, **tol):
    c = compare(actual, expected, **tol)
    assert c.passed, c.message


# fp32 sums of up to ~2e4 unit normals: |sum| ~ 150, fp32 rounding of partials ~1e-5
_FP32 = dict(rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n", [1, 7, 1000, 4097, 20001])
def test_sum_all_odd_sizes(n):
    x = _x((n,))
    out = sum_all(x)
    assert out.shape == () and out.dtype == torch.float32
    _check(out, _reference(x), **_FP32)


@pytest.mark.parametrize("shape, chunks", [((37, 129), None), ((5, 3000), 4), ((3, 1), None), ((2, 5, 77), 3)])
def test_sum_lastdim(shape, chunks):
    x = _x(shape)
    out = triton_sum(x, -1, chunks=chunks)
    assert out.shape == shape[:-1]
    _check(out, _reference(x, -1), **_FP32)
    _check(sum_lastdim(x), _reference(x, -1), **_FP32)


@pytest.mark.parametrize("dim", [0, 1, -3])
def test_other_dims_and_strides(dim):
    x = _x((6, 7, 9)).transpose(0, 2)  # (9, 7, 6), non-contiguous
    _check(triton_sum(x, dim), _reference(x, dim), **_FP32)


def test_two_stage_whole_tensor():
    x = _x((13, 17, 11))
    for chunks in (1, 2, 5, 64):  # 64 > blocks available: fewer chunks than asked
        _check(triton_sum(x, chunks=chunks), _reference(x), **_FP32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_fp32(dtype):
    x = _x((4, 2000), dtype)
    out = triton_sum(x, -1)
    assert out.dtype == dtype
    _check(out, _reference(x, -1))  # project tolerance: one rounding of an fp32 sum
    # fp32 accumulation: summing 4096 copies of 1.0 in fp16 would stall at 2048
    ones = torch.ones(4096, dtype=torch.float16, device=DEVICE)
    assert float(triton_sum(ones, dtype=torch.float32)) == 4096.0


def test_empty_and_scalar():
    assert float(sum_all(torch.zeros(0, device=DEVICE))) == 0.0
    assert triton_sum(torch.zeros(0, 5, device=DEVICE), -1).shape == (0,)
    assert torch.equal(triton_sum(torch.ones(3, 0, device=DEVICE), -1), torch.zeros(3, device=DEVICE))
    s = torch.tensor(2.5, device=DEVICE)
    assert float(triton_sum(s)) == 2.5 and float(triton_sum(s, 0)) == 2.5


def test_input_unchanged():
    x = _x((5, 33))
    x0 = x.clone()
    triton_sum(x, -1)
    assert torch.equal(x, x0)


def test_errors():
    with pytest.raises(TypeError, match="dtype"):
        triton_sum(torch.arange(5, device=DEVICE))
    with pytest.raises(IndexError, match="dim"):
        triton_sum(_x((2, 3)), 2)
    with pytest.raises(ValueError, match="chunks"):
        triton_sum(_x((2, 3)), chunks=0)


def test_planted_wrong_sums_are_caught():
    x = _x((5, 3000))
    ref = _reference(x, -1)
    _check(triton_sum(x, -1, chunks=4), ref, **_FP32)
    # a masked tail off by one (last element dropped), a lost first chunk
    assert not compare(x[:, :-1].sum(-1), ref, **_FP32).passed
    assert not compare(x[:, 750:].sum(-1), ref, **_FP32).passed
    # fp16 accumulation: a running fp16 sum of ones stalls at 2048 (spacing 2 there)
    ones = torch.ones(3000, dtype=torch.float16, device=DEVICE)
    fp16_running = torch.tensor(0.0, dtype=torch.float16, device=DEVICE)
    for v in ones[:2100]:  # each add rounds to fp16; 2048 + 1 rounds back to 2048
        fp16_running = fp16_running + v
    assert float(fp16_running) == 2048.0
    assert float(triton_sum(ones, dtype=torch.float32)) == 3000.0
    assert not compare(fp16_running.float(), torch.tensor(3000.0, device=DEVICE)).passed
