"""CPU C++ fused LayerNorm + Dropout (kernels.cpp) against F.layer_norm + the Philox mask of
kernels/rng/philox.py: Philox bit-equality (also with Triton's tl.rand in the interpreter), forward,
backward vs autograd of the reference, gradcheck in float64, p = 0 and p = 1, odd row lengths,
input checks, and planted bugs fed into the same comparisons.

The first run builds the extension (~45 s on 2 cores) into ~/.cache/torchdrills/ext (or
$TORCH_EXTENSIONS_DIR); later runs load it in about a second.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import kernels.cpp as cpp
from harness.checks import compare
from kernels.rng import philox

ROW_LENGTHS = (1, 7, 1000, 1023)


@pytest.fixture(scope="session")
def cpp_ext():
    """The compiled module, built once per session (kernels.cpp.load is functools.cache'd)."""
    return cpp.load()


def _inputs(shape, dtype=torch.float32, seed=0, affine=True):
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5).to(dtype)
    w = (1 + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype) if affine else None
    b = (0.1 * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype) if affine else None
    dy = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return x, w, b, dy


def reference(x, w, b, p, seed, eps=1e-5):
    """F.layer_norm then dropout with kernels/rng/philox.py's mask (offset = row-major index)."""
    y = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    keep = philox.dropout_mask(seed, x.numel(), p).view(x.shape)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return torch.where(keep, y * scale, torch.zeros((), dtype=y.dtype))


def _fwd_bwd(fn, x, w, b, dy, p, seed):
    """Output and autograd gradients (x, and weight/bias when given) of fn(x, w, b, p, seed)."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, w, b) if t is not None]
    xx = leaves[0]
    ww, bb = (leaves[1], leaves[2]) if w is not None else (None, None)
    y = fn(xx, ww, bb, p, seed)
    grads = torch.autograd.grad(y, leaves, dy)
    return (y.detach(), *grads)


def assert_matches_reference(fn, x, w, b, dy, p, seed):
    """Compare fn's output and gradients with the reference computed in float64.

    The reference runs in float64 and is rounded to x.dtype: the extension accumulates in
    double, so a float32 reference would only add its own rounding (for N = 1 the float32
    F.layer_norm gradients are pure rounding noise times rstd = 1/sqrt(eps) ~ 316).
    """
    actual = _fwd_bwd(fn, x, w, b, dy, p, seed)
    d = lambda t: None if t is None else t.double()  # noqa: E731
    expected = _fwd_bwd(reference, d(x), d(w), d(b), d(dy), p, seed)
    expected = tuple(e.to(x.dtype) for e in expected)
    for name, a, e in zip(("out", "grad_x", "grad_weight", "grad_bias"), actual, expected):
        c = compare(a, e, name=name)
        assert c.passed, c.message


def ext_fn(x, w, b, p, seed):
    return cpp.layer_norm_dropout(x, w, b, p=p, seed=seed)


# ---- Philox ----------------------------------------------------------------------------------

OFFSETS = torch.cat(
    [torch.arange(0, 5000), torch.tensor([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 7, 2**40 + 3, 2**62 + 11])]
)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 + 5, 2**63 - 1])
def test_philox_matches_python_reference(cpp_ext, seed):
    assert torch.equal(cpp.philox_uniform(seed, OFFSETS), philox.philox_uniform(seed, OFFSETS))


def test_philox_matches_triton_tl_rand(cpp_ext):
    """Ground truth from Triton itself (interpreter on CPU; tests/conftest.py sets it)."""
    triton = pytest.importorskip("triton")
    tl = pytest.importorskip("triton.language")

    @triton.jit
    def rand_kernel(out_ptr, off_ptr, seed, n, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = i < n
        tl.store(out_ptr + i, tl.rand(seed, tl.load(off_ptr + i, mask=m)), mask=m)

    for seed in (7, 2**40 + 17):
        out = torch.empty(OFFSETS.shape, dtype=torch.float32)
        rand_kernel[(triton.cdiv(OFFSETS.numel(), 1024),)](out, OFFSETS, seed, OFFSETS.numel(), BLOCK=1024)
        assert torch.equal(cpp.philox_uniform(seed, OFFSETS), out)


def test_philox_check_catches_wrong_round_count(cpp_ext):
    """Planted: 9 Philox rounds instead of 10 must not pass the equality above."""
    wrong = philox.philox_uniform(3, OFFSETS, n_rounds=9)
    assert not torch.equal(cpp.philox_uniform(3, OFFSETS), wrong)


def test_mask_of_output_is_the_philox_mask(cpp_ext):
    x, w, b, _ = _inputs((4, 257))
    out, _, _ = cpp.layer_norm_dropout_forward(x, w, b, p=0.4, seed=99)
    keep = philox.dropout_mask(99, x.numel(), 0.4).view(x.shape)
    y = F.layer_norm(x, (257,), w, b)
    assert torch.equal(out != 0, keep & (y != 0))
    assert 0.5 < keep.float().mean().item() < 0.7  # ~ 1 - p kept


# ---- forward and backward -------------------------------------------------------------------


@pytest.mark.parametrize("n", ROW_LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_backward_match_reference(cpp_ext, n, dtype):
    x, w, b, dy = _inputs((3, 5, n), dtype, seed=n)
    assert_matches_reference(ext_fn, x, w, b, dy, 0.3, seed=1234 + n)


def test_no_affine_and_1d_input(cpp_ext):
    x, _, _, dy = _inputs((1023,), affine=False)
    assert_matches_reference(ext_fn, x, None, None, dy, 0.2, seed=5)


def test_long_rows_and_large_offsets(cpp_ext):
    """4096-wide rows (AVX-512 main loop plus no tail) with a seed above 2^32."""
    x, w, b, dy = _inputs((6, 4096), seed=3)
    assert_matches_reference(ext_fn, x, w, b, dy, 0.1, seed=2**33 + 1)


def test_mean_and_rstd_match_torch(cpp_ext):
    x, w, b, _ = _inputs((8, 1000))
    _, mean, rstd = cpp.layer_norm_dropout_forward(x, w, b, p=0.1, seed=0, eps=1e-5)
    var, mu = torch.var_mean(x.double(), dim=-1, unbiased=False)
    assert mean.shape == rstd.shape == (8,)
    assert compare(mean, mu.float()).passed
    assert compare(rstd, (1 / torch.sqrt(var + 1e-5)).float()).passed


def _check_p0(fn):
    x, w, b, _ = _inputs((5, 1023))
    c = compare(fn(x, w, b), F.layer_norm(x, (1023,), w, b))
    assert c.passed, c.message


def test_p0_equals_layer_norm(cpp_ext):
    _check_p0(lambda x, w, b: cpp.layer_norm_dropout_forward(x, w, b, p=0.0, seed=0)[0])


def test_p1_drops_everything(cpp_ext):
    x, w, b, dy = _inputs((3, 7))
    y, gx, gw, gb = _fwd_bwd(ext_fn, x, w, b, dy, 1.0, 0)
    for t in (y, gx, gw, gb):
        assert torch.count_nonzero(t) == 0


def test_same_seed_same_output_other_seed_other_mask(cpp_ext):
    x, w, b, _ = _inputs((4, 100))
    a = cpp.layer_norm_dropout_forward(x, w, b, p=0.5, seed=1)[0]
    assert torch.equal(a, cpp.layer_norm_dropout_forward(x, w, b, p=0.5, seed=1)[0])
    assert not torch.equal(a != 0, cpp.layer_norm_dropout_forward(x, w, b, p=0.5, seed=2)[0] != 0)


def test_inputs_not_mutated(cpp_ext):
    x, w, b, dy = _inputs((3, 64))
    before = [t.clone() for t in (x, w, b, dy)]
    _fwd_bwd(ext_fn, x, w, b, dy, 0.3, 0)
    assert all(torch.equal(t, s) for t, s in zip((x, w, b, dy), before))


def test_gradcheck_float64(cpp_ext):
    x, w, b, _ = _inputs((3, 9), torch.float64)
    args = tuple(t.requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w, b: cpp.layer_norm_dropout(x, w, b, p=0.25, seed=8), args)


def test_backward_raw_entry_point(cpp_ext):
    """layer_norm_dropout_backward called directly, without weight/bias gradients."""
    x, w, b, dy = _inputs((2, 7, 33))
    _, mean, rstd = cpp.layer_norm_dropout_forward(x, w, b, p=0.3, seed=4)
    gx, gw, gb = cpp.layer_norm_dropout_backward(
        dy, x, w, mean, rstd, p=0.3, seed=4, need_weight_grad=False, need_bias_grad=False
    )
    assert gw is None and gb is None
    expected = _fwd_bwd(reference, x.double(), w.double(), b.double(), dy.double(), 0.3, 4)[1]
    assert compare(gx, expected.float()).passed


# ---- input checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (lambda x, w, b: (x.int(), w, b, 0.1), TypeError, "dtype"),
        (lambda x, w, b: (x.half(), w, b, 0.1), TypeError, "supported: float32, float64"),
        (lambda x, w, b: (x.t(), w, b, 0.1), ValueError, "contiguous"),
        (lambda x, w, b: (x, w[:-1], b, 0.1), ValueError, r"shape \(8,\)"),
        (lambda x, w, b: (x, w.double(), b, 0.1), TypeError, "weight has dtype"),
        (lambda x, w, b: (x, w, b, 1.5), ValueError, r"\[0, 1\]"),
        (lambda x, w, b: (x.to("meta"), w, b, 0.1), ValueError, "move it"),
        (lambda x, w, b: (x[:, :0], None, None, 0.1), ValueError, "non-empty last dim"),
    ],
)
def test_bad_inputs_raise_clear_errors(bad, exc, match):
    x, w, b, _ = _inputs((8, 8))
    xx, ww, bb, p = bad(x, w, b)
    with pytest.raises(exc, match=match):
        cpp.layer_norm_dropout(xx, ww, bb, p=p, seed=0)


def test_bad_seed_raises():
    x, w, b, _ = _inputs((2, 4))
    with pytest.raises(ValueError, match="seed"):
        cpp.layer_norm_dropout(x, w, b, p=0.1, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        cpp.layer_norm_dropout(x, w, b, p=0.1, seed=1.5)


def test_raw_module_checks_too(cpp_ext):
    """Callers that skip the Python wrapper still get a clear (RuntimeError) message."""
    x, w, b, _ = _inputs((4, 8))
    with pytest.raises(RuntimeError, match="contiguous"):
        cpp_ext.layer_norm_dropout_forward(x.t(), None, None, 0.1, 0, 1e-5)


def test_bytes_formula():
    # M=2, N=3, float32: read x 24 B + weight, bias 24 B, write out 24 B + mean, rstd 16 B.
    assert cpp.layer_norm_dropout_bytes(2, 3, 4, 4) == 24 + 24 + 24 + 16
    # backward: read grad_out, x (48) + weight (12) + mean, rstd (16); write dx (24) + dw, db (24)
    assert cpp.layer_norm_dropout_bytes(2, 3, 4, 4, backward=True) == 48 + 12 + 16 + 24 + 24


# ---- planted bugs: the comparisons above must catch these ----------------------------------


def _off_by_one_offsets(x, w, b, p, seed):
    y = F.layer_norm(x, (x.shape[-1],), w, b)
    keep = philox.dropout_mask(seed, torch.arange(1, x.numel() + 1), p).view(x.shape)
    return y * keep / (1 - p)


def _missing_scale(x, w, b, p, seed):
    return ext_fn(x, w, b, p, seed) * (1 - p)


def _column_major_offsets(x, w, b, p, seed):
    y = F.layer_norm(x, (x.shape[-1],), w, b)
    idx = torch.arange(x.numel()).view(-1, x.shape[-1]).t().contiguous().view(x.shape)
    return y * philox.dropout_mask(seed, idx, p) / (1 - p)


def _unbiased_variance(x, w, b, p, seed):
    n = x.shape[-1]
    xhat = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=True) + 1e-5)
    keep = philox.dropout_mask(seed, x.numel(), p).view(x.shape)
    return (xhat * w + b) * keep / (1 - p) if n > 1 else xhat


class _BackwardIgnoresMask(torch.autograd.Function):
    """Right forward; backward passes grad_out through the layer norm but not the mask."""

    @staticmethod
    def forward(ctx, x, w, b, p, seed):
        ctx.save_for_backward(x, w, b)
        return cpp.layer_norm_dropout_forward(x, w, b, p=p, seed=seed)[0]

    @staticmethod
    def backward(ctx, g):
        x, w, b = ctx.saved_tensors
        with torch.enable_grad():
            xx, ww, bb = (t.detach().requires_grad_() for t in (x, w, b))
            y = F.layer_norm(xx, (xx.shape[-1],), ww, bb) / 0.7
            return (*torch.autograd.grad(y, (xx, ww, bb), g), None, None)


@pytest.mark.parametrize(
    "wrong",
    [
        _off_by_one_offsets,
        _missing_scale,
        _column_major_offsets,
        _unbiased_variance,
        lambda x, w, b, p, seed: _BackwardIgnoresMask.apply(x, w, b, p, seed),
    ],
    ids=["off_by_one_offsets", "missing_1/(1-p)", "column_major_offsets", "unbiased_var", "backward_ignores_mask"],
)
def test_planted_bugs_are_caught(cpp_ext, wrong):
    x, w, b, dy = _inputs((3, 5, 33))
    with pytest.raises(AssertionError):
        assert_matches_reference(wrong, x, w, b, dy, 0.3, seed=11)


def test_p0_check_catches_a_missing_bias(cpp_ext):
    wrong = lambda x, w, b: cpp.layer_norm_dropout_forward(x, w, None, p=0.0, seed=0)[0]  # noqa: E731
    with pytest.raises(AssertionError):
        _check_p0(wrong)
