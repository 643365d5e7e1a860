"""CPU C++ sums (kernels.cpp.sum_all / sum_lastdim) against torch.sum over odd sizes, their
accumulation accuracy (double; Kahan across chunks for float64), input checks, and planted bugs
fed into the same comparisons."""

from __future__ import annotations

import math

import pytest
import torch

import kernels.cpp as cpp
from harness.checks import compare

SIZES = (0, 1, 7, 1000, 1023, 4095, 4097, 100_003)
LASTDIM_SHAPES = ((5, 1), (3, 7), (2, 3, 1023), (4, 4097), (1000,), (0, 5), (4, 0))


@pytest.fixture(scope="session")
def cpp_ext():
    """The compiled module, built once per session (kernels.cpp.load is functools.cache'd)."""
    return cpp.load()


def _x(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


def check_sum_all(fn, n, dtype):
    """fn(x) against torch.sum: same shape (0-dim) and dtype, values within dtype tolerance
    (rtol scaled by sqrt(n): both sides round differently, torch with float accumulators)."""
    x = _x((n,), dtype, seed=n)
    out, ref = fn(x), torch.sum(x)
    assert out.shape == ref.shape == () and out.dtype == ref.dtype
    c = compare(out, ref, atol=1e-5 * max(1.0, math.sqrt(n)))
    assert c.passed, c.message


def check_sum_lastdim(fn, shape, dtype):
    x = _x(shape, dtype, seed=sum(shape))
    out, ref = fn(x), torch.sum(x, dim=-1)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    c = compare(out, ref)
    assert c.passed, c.message


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sum_all_matches_torch_sum(cpp_ext, n, dtype):
    check_sum_all(cpp.sum_all, n, dtype)


@pytest.mark.parametrize("shape", LASTDIM_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sum_lastdim_matches_torch_sum(cpp_ext, shape, dtype):
    check_sum_lastdim(cpp.sum_lastdim, shape, dtype)


def test_sum_all_of_multidim_tensor(cpp_ext):
    x = _x((3, 5, 7, 11), torch.float32)
    assert compare(cpp.sum_all(x), x.sum()).passed


def test_float32_sum_is_correctly_rounded(cpp_ext):
    """Double accumulation: the float32 result is the float nearest the exact sum (fsum),
    for 1e6 elements where float accumulation would drift by many ulps."""
    x = _x((1_000_000,), torch.float32, seed=3)
    exact = math.fsum(x.double().tolist())
    ours = cpp.sum_all(x).item()
    assert ours == float(torch.tensor(exact, dtype=torch.float32))


CHUNK = 4096  # reduction.cpp's chunk length


def check_compensated(fn):
    """Chunk sums (4096 elements each) of 1e16, then 1.0 one thousand times, then -1e16: plain
    double addition of the chunk sums loses every 1.0 (ulp(1e16) = 2), Kahan keeps them."""
    x = torch.zeros(CHUNK * 1002, dtype=torch.float64)
    x[0], x[CHUNK * 1001] = 1e16, -1e16
    x[CHUNK : CHUNK * 1001 : CHUNK] = 1.0
    assert float(fn(x)) == 1000.0


def test_float64_kahan_across_chunks(cpp_ext):
    check_compensated(cpp.sum_all)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="supported: float32, float64"):
        cpp.sum_all(torch.ones(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="contiguous"):
        cpp.sum_lastdim(torch.ones(4, 5).t())
    with pytest.raises(ValueError, match="0-dim"):
        cpp.sum_lastdim(torch.tensor(1.0))
    with pytest.raises(ValueError, match="move it"):
        cpp.sum_all(torch.ones(3, device="meta"))


def test_input_not_mutated(cpp_ext):
    x = _x((7, 33), torch.float32)
    before = x.clone()
    cpp.sum_all(x)
    cpp.sum_lastdim(x)
    assert torch.equal(x, before)


# ---- planted bugs: the same checks must fail ------------------------------------------------


@pytest.mark.parametrize(
    "wrong, n",
    [
        (lambda x: cpp.sum_all(x[:-1]), 1023),  # drops the tail element
        (lambda x: cpp.sum_all(x[1:]), 7),  # off by one at the start
        (lambda x: cpp.sum_all(x[: x.numel() // 4 * 4]), 4097),  # forgets the n % 4 remainder
        (lambda x: cpp.sum_all(x) * 0, 1000),  # constant output
    ],
)
def test_planted_sum_all_bugs_are_caught(cpp_ext, wrong, n):
    with pytest.raises(AssertionError):
        check_sum_all(wrong, n, torch.float32)


def test_planted_sum_lastdim_bug_is_caught(cpp_ext):
    with pytest.raises(AssertionError):
        check_sum_lastdim(lambda x: cpp.sum_lastdim(x[..., :-1].contiguous()), (3, 1023), torch.float32)


def _naive_chunk_sum(x):
    total = 0.0
    for part in x.split(CHUNK):
        total += cpp.sum_all(part).item()  # each chunk exact, the running total is not
    return total


def test_planted_naive_chunk_combination_is_caught(cpp_ext):
    with pytest.raises(AssertionError):
        check_compensated(_naive_chunk_sum)
