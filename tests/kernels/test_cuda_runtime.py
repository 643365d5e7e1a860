"""CUDA extension at run time (kernels.cuda): Philox bit-equality with kernels/rng/philox.py,
fused LayerNorm + Dropout forward/backward vs F.layer_norm + the same mask (float32, float16,
bfloat16, float64; vectorised and unaligned paths), sums vs torch.sum over odd sizes, and planted
bugs. Every test but one needs a GPU and is skipped with "needs cuda" elsewhere; the first build
takes 1-2 minutes (cached under ~/.cache/torchdrills/ext afterwards).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.checks import compare, tolerance_for
from kernels import cuda
from kernels.rng import philox

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")

ROW_LENGTHS = (1, 7, 1000, 1023, 4096)
OFFSETS = torch.cat([torch.arange(0, 5000), torch.tensor([2**31, 2**32 - 1, 2**32, 2**40 + 3, 2**62 + 11])])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error path")
def test_load_without_cuda_raises_clear_error():
    with pytest.raises(RuntimeError, match="needs a CUDA device"):
        cuda.load()


@pytest.fixture(scope="session")
def cuda_ext():
    """The compiled module, built once per session (kernels.cuda.load is functools.cache'd)."""
    return cuda.load()


def _inputs(shape, dtype=torch.float32, seed=0, offset_elems=0):
    """x, weight, bias, dy on the GPU; offset_elems > 0 makes x start off a 16-byte boundary."""
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    numel = math.prod(shape)
    buf = (torch.randn(numel + offset_elems, generator=g, dtype=torch.float64) * 2 + 0.5).to(dtype)
    x = buf.cuda()[offset_elems:].view(shape)  # contiguous, possibly misaligned
    w = (1 + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype).cuda()
    b = (0.1 * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype).cuda()
    dy = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).cuda()
    return x, w, b, dy


def reference(x, w, b, p, seed, eps=1e-5):
    y = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return torch.where(keep, y * scale, torch.zeros((), dtype=y.dtype, device=y.device))


def _fwd_bwd(fn, x, w, b, dy, p, seed):
    leaves = [t.detach().requires_grad_() for t in (x, w, b)]  # detach keeps data_ptr (alignment)
    y = fn(*leaves, p, seed)
    return (y.detach(), *torch.autograd.grad(y, leaves, dy))


def assert_matches_reference(fn, x, w, b, dy, p, seed):
    """fn's output and gradients vs the float64 reference rounded to x.dtype (harness tolerances)."""
    actual = _fwd_bwd(fn, x, w, b, dy, p, seed)
    expected = _fwd_bwd(reference, x.double(), w.double(), b.double(), dy.double(), p, seed)
    for name, a, e in zip(("out", "grad_x", "grad_weight", "grad_bias"), actual, expected):
        c = compare(a, e.to(x.dtype), name=name)
        assert c.passed, c.message


def ext_fn(x, w, b, p, seed):
    return cuda.layer_norm_dropout(x, w, b, p=p, seed=seed)


@needs_cuda
@pytest.mark.parametrize("seed", [0, 12345, 2**32 + 5, 2**63 - 1])
def test_philox_matches_python_reference(cuda_ext, seed):
    got = cuda.philox_uniform(seed, OFFSETS.cuda()).cpu()
    assert torch.equal(got, philox.philox_uniform(seed, OFFSETS))


@needs_cuda
@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_forward_backward_float32(cuda_ext, n):
    x, w, b, dy = _inputs((3, 5, n), seed=n)
    assert_matches_reference(ext_fn, x, w, b, dy, 0.3, seed=77 + n)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("n", [7, 1024])
def test_forward_backward_other_dtypes(cuda_ext, dtype, n):
    x, w, b, dy = _inputs((4, n), dtype, seed=n)
    assert_matches_reference(ext_fn, x, w, b, dy, 0.2, seed=5)


@needs_cuda
def test_unaligned_input_takes_the_scalar_path(cuda_ext):
    x, w, b, dy = _inputs((6, 1024), offset_elems=1)  # N % 4 == 0 but x is 4 bytes off
    assert x.data_ptr() % 16 != 0
    assert_matches_reference(ext_fn, x, w, b, dy, 0.3, seed=9)


@needs_cuda
def test_many_rows_use_row_splits_for_dgamma(cuda_ext):
    x, w, b, dy = _inputs((2048, 256), seed=1)
    assert_matches_reference(ext_fn, x, w, b, dy, 0.1, seed=2**33)


@needs_cuda
def test_same_mask_as_cpu_extension(cuda_ext):
    import kernels.cpp as cpp

    x, w, b, _ = _inputs((5, 333), torch.float64)
    gpu = cuda.layer_norm_dropout_forward(x, w, b, p=0.5, seed=3)[0].cpu()
    cpu = cpp.layer_norm_dropout_forward(x.cpu(), w.cpu(), b.cpu(), p=0.5, seed=3)[0]
    assert torch.equal(gpu != 0, cpu != 0)
    assert compare(gpu, cpu).passed


@needs_cuda
def test_p0_equals_layer_norm_and_p1_is_zero(cuda_ext):
    x, w, b, _ = _inputs((5, 1023))
    c = compare(cuda.layer_norm_dropout_forward(x, w, b, p=0.0, seed=0)[0], F.layer_norm(x, (1023,), w, b))
    assert c.passed, c.message
    assert torch.count_nonzero(cuda.layer_norm_dropout_forward(x, w, b, p=1.0, seed=0)[0]) == 0


@needs_cuda
def test_gradcheck_float64(cuda_ext):
    x, w, b, _ = _inputs((3, 9), torch.float64)
    args = tuple(t.requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w, b: cuda.layer_norm_dropout(x, w, b, p=0.25, seed=8), args)


@needs_cuda
@pytest.mark.parametrize(
    "wrong",
    [
        lambda x, w, b, p, seed: ext_fn(x, w, b, p, seed) * (1 - p),  # missing 1/(1-p)
        lambda x, w, b, p, seed: ext_fn(x, w, b, p, seed + 1),  # other seed
    ],
    ids=["missing_scale", "wrong_seed"],
)
def test_planted_bugs_are_caught(cuda_ext, wrong):
    x, w, b, dy = _inputs((3, 64))
    with pytest.raises(AssertionError):
        assert_matches_reference(wrong, x, w, b, dy, 0.3, seed=11)


# ---- sums -----------------------------------------------------------------------------------


def check_sum_all(fn, n, dtype, offset_elems=0):
    g = torch.Generator().manual_seed(n)
    x = (torch.randn(n + offset_elems, generator=g, dtype=torch.float64) + 0.25).to(dtype).cuda()[offset_elems:]
    out = fn(x)
    assert out.shape == () and out.dtype == dtype
    tol = tolerance_for(dtype)
    # fp32 accumulation in a different order than the float64 reference: scale with sqrt(n).
    c = compare(out, x.double().sum().to(dtype), rtol=max(tol.rtol, 1e-5), atol=tol.atol * max(1.0, math.sqrt(n)))
    assert c.passed, c.message


@needs_cuda
@pytest.mark.parametrize("n", [1, 7, 1000, 1023, 4097, 1_000_003, 10_000_019])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sum_all_matches_torch_sum(cuda_ext, n, dtype):
    check_sum_all(cuda.sum_all, n, dtype)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sum_all_half_types(cuda_ext, dtype):
    check_sum_all(cuda.sum_all, 4097, dtype)


@needs_cuda
def test_sum_all_unaligned_and_empty(cuda_ext):
    check_sum_all(cuda.sum_all, 100_003, torch.float32, offset_elems=1)
    assert cuda.sum_all(torch.empty(0, device="cuda")).item() == 0.0


@needs_cuda
def test_sum_all_is_deterministic(cuda_ext):
    x = torch.randn(10_000_019, device="cuda")
    assert torch.equal(cuda.sum_all(x), cuda.sum_all(x))


@needs_cuda
@pytest.mark.parametrize("shape", [(5, 1), (3, 7), (2, 3, 1023), (4, 4096), (100_000, 3), (0, 5), (4, 0)])
def test_sum_lastdim_matches_torch_sum(cuda_ext, shape):
    x = torch.randn(shape, device="cuda")
    c = compare(cuda.sum_lastdim(x), x.double().sum(-1).float())
    assert c.passed, c.message


@needs_cuda
def test_planted_off_by_one_sum_is_caught(cuda_ext):
    with pytest.raises(AssertionError):
        check_sum_all(lambda x: cuda.sum_all(x[:-1]), 1023, torch.float32)
