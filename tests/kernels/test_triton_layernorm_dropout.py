"""Fused LayerNorm + Dropout (Triton interpreter) against the eager Philox reference:
forward, gradients, p = 0 == F.layer_norm, gradcheck in fp64, and planted bugs caught."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")
from harness.checks import compare  # noqa: E402
from kernels.rng import philox  # noqa: E402
from kernels.triton import (  # noqa: E402
    fused_layernorm_dropout,
    layernorm_dropout_bwd,
    layernorm_dropout_fwd,
    layernorm_dropout_reference,
)

# CPU tensors under the interpreter (this machine); CUDA when triton compiles for a GPU
DEVICE = "cpu" if importlib.import_module("kernels.triton").INTERPRETER else "cuda"


def _inputs(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    x = (torch.randn(shape, generator=g) * 2 + 0.5).to(DEVICE, dtype).requires_grad_()
    w = (1 + 0.3 * torch.randn(n, generator=g)).to(DEVICE, dtype).requires_grad_()
    b = (0.1 * torch.randn(n, generator=g)).to(DEVICE, dtype).requires_grad_()
    dy = torch.randn(shape, generator=g).to(DEVICE, dtype)
    return x, w, b, dy


def _fwd_bwd(fn, x, w, b, dy, *args):
    y = fn(x, w, b, *args)
    grads = torch.autograd.grad(y, (x, w, b), dy)
    return (y, *grads)


def _check(actual, expected, **tol):
    c = compare(actual, expected, **tol)
    assert c.passed, c.message


# fp32 tolerance: dw/db sum over M rows in a different order than autograd's reduction
_FP32 = dict(rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape, p",
    [((7, 100), 0.3), ((2, 3, 37), 0.5), ((5, 3000), 0.1), ((300, 24), 0.25), ((5, 1), 0.5)],
    ids=["7x100", "2x3x37", "5x3000-row-per-tile", "300x24-128-rows-a-tile", "N=1"],
)
def test_forward_and_grads_match_reference(shape, p):
    x, w, b, dy = _inputs(shape)
    got = _fwd_bwd(fused_layernorm_dropout, x, w, b, dy, p, 1234)
    ref = _fwd_bwd(layernorm_dropout_reference, x, w, b, dy, p, 1234)
    _check(got, ref, **_FP32)
    # the dropped positions are exactly the reference mask's (not just close values)
    keep = philox.dropout_mask(1234, x.numel(), p, device=DEVICE).view(shape)
    assert torch.equal(got[0] == 0, ~keep)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(dtype):
    x, w, b, dy = _inputs((9, 50), dtype)
    got = _fwd_bwd(fused_layernorm_dropout, x, w, b, dy, 0.2, 77)
    ref = _fwd_bwd(layernorm_dropout_reference, x, w, b, dy, 0.2, 77)
    assert all(t.dtype == dtype for t in got)
    _check(got, ref)  # project tolerance for the dtype


def test_p_zero_and_eval_equal_layer_norm():
    x, w, b, dy = _inputs((6, 45))
    expected = _fwd_bwd(lambda x, w, b: F.layer_norm(x, (45,), w, b, 1e-5), x, w, b, dy)
    _check(_fwd_bwd(fused_layernorm_dropout, x, w, b, dy, 0.0, 3), expected, **_FP32)
    _check(_fwd_bwd(lambda *a: fused_layernorm_dropout(*a, 0.7, 3, training=False), x, w, b, dy), expected, **_FP32)


def test_p_one_drops_everything_and_eps_is_used():
    x, w, b, dy = _inputs((4, 20))
    y, dx, dw, db = _fwd_bwd(fused_layernorm_dropout, x, w, b, dy, 1.0, 3)
    assert not y.any() and not dx.any() and not dw.any() and not db.any()
    # a large eps changes the result, and the kernel matches the reference with it
    y_eps = fused_layernorm_dropout(x, w, b, 0.0, 3, eps=0.5)
    _check(y_eps, layernorm_dropout_reference(x, w, b, 0.0, 3, eps=0.5), **_FP32)
    assert not compare(y_eps, fused_layernorm_dropout(x, w, b, 0.0, 3), **_FP32).passed


def test_saved_stats_and_strided_input():
    x, w, b, _ = _inputs((8, 64))
    xs = x.detach()[:, ::2]  # (8, 32), column stride 2: the launcher copies it
    w32, b32 = w.detach()[:32], b.detach()[:32]
    y, mean, rstd = layernorm_dropout_fwd(xs, w32, b32, 0.0, 0)
    _check(y, F.layer_norm(xs, (32,), w32, b32), **_FP32)
    _check(mean, xs.mean(-1), **_FP32)
    _check(rstd, torch.rsqrt(xs.var(-1, unbiased=False) + 1e-5), **_FP32)
    xt = x.detach().t()  # (64, 8): rows of 8 with row stride 1
    w8, b8 = w.detach()[::8], b.detach()[1::8]  # (8,) with stride 8: copied by the launcher
    _check(layernorm_dropout_fwd(xt, w8, b8, 0.4, 9)[0], layernorm_dropout_reference(xt, w8, b8, 0.4, 9), **_FP32)


def test_expanded_upstream_gradient():
    # y.sum().backward() hands the backward a stride-0 (expanded) dy
    x, w, b, _ = _inputs((4, 3, 20))
    fused_layernorm_dropout(x, w, b, 0.5, 4).sum().backward()
    got = (x.grad, w.grad, b.grad)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    layernorm_dropout_reference(x2, w2, b2, 0.5, 4).sum().backward()
    _check(got, (x2.grad, w2.grad, b2.grad), **_FP32)


def test_deterministic_per_seed():
    x, w, b, _ = _inputs((5, 40))
    y1 = fused_layernorm_dropout(x, w, b, 0.5, 10)
    assert torch.equal(y1, fused_layernorm_dropout(x, w, b, 0.5, 10))
    assert not torch.equal(y1 == 0, fused_layernorm_dropout(x, w, b, 0.5, 11) == 0)


def test_gradcheck_fp64():
    x, w, b, _ = _inputs((3, 11), torch.float64)
    fn = lambda x, w, b: fused_layernorm_dropout(x, w, b, 0.3, 5)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b), fast_mode=True)


def test_backward_launcher_multi_program_partials():
    # 9 rows of 3000 (one row a tile): 9 tiles over 4 persistent programs, so programs
    # loop over several tiles and dw/db are sums of 4 partials
    x, w, b, dy = _inputs((9, 3000))
    y, mean, rstd = layernorm_dropout_fwd(x.detach(), w.detach(), b.detach(), 0.25, 8)
    dx, dw, db = layernorm_dropout_bwd(dy, x.detach(), w.detach(), mean, rstd, 0.25, 8)
    ref = _fwd_bwd(layernorm_dropout_reference, x, w, b, dy, 0.25, 8)
    _check((y, dx, dw, db), ref, **_FP32)


def test_errors():
    x, w, b, _ = _inputs((4, 10))
    with pytest.raises(ValueError, match="weight must have shape"):
        fused_layernorm_dropout(x, w[:5], b, 0.1, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fused_layernorm_dropout(x, w, b, 1.5, 0)
    with pytest.raises(ValueError, match="seed"):
        fused_layernorm_dropout(x, w, b, 0.1, -1)
    with pytest.raises(TypeError, match="seed"):
        fused_layernorm_dropout(x, w, b, 0.1, 0.5)
    with pytest.raises(TypeError, match="dtype"):
        fused_layernorm_dropout(x.long(), w, b, 0.1, 0)
    big = torch.zeros(1, 40000, device=DEVICE)
    with pytest.raises(ValueError, match="do not fit one block"):
        fused_layernorm_dropout(big, big[0], big[0], 0.1, 0)


# --- planted bugs: a wrong reference / wrong mask must fail the same comparisons --------


def _reference_offset_by_one(x, w, b, p, seed, eps=1e-5):
    y = F.layer_norm(x.float(), (x.shape[-1],), w.float(), b.float(), eps)
    keep = philox.dropout_mask(seed, torch.arange(1, x.numel() + 1, device=x.device), p).view(x.shape)
    return torch.where(keep, y / (1 - p), 0.0).to(x.dtype)


def _reference_column_major_offsets(x, w, b, p, seed, eps=1e-5):
    y = F.layer_norm(x.float(), (x.shape[-1],), w.float(), b.float(), eps)
    m, n = x.shape
    offs = torch.arange(x.numel(), device=x.device).view(n, m).t()  # col * M + row instead of row * N + col
    keep = philox.dropout_mask(seed, offs, p)
    return torch.where(keep, y / (1 - p), 0.0).to(x.dtype)


def _reference_unscaled(x, w, b, p, seed, eps=1e-5):
    return layernorm_dropout_reference(x, w, b, p, seed, eps) * (1 - p)


def _reference_unbiased_var(x, w, b, p, seed, eps=1e-5):
    xf = x.float()
    y = (xf - xf.mean(-1, keepdim=True)) / torch.sqrt(xf.var(-1, keepdim=True) + eps) * w + b  # N - 1
    keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)
    return torch.where(keep, y / (1 - p), 0.0).to(x.dtype)


@pytest.mark.parametrize(
    "wrong",
    [_reference_offset_by_one, _reference_column_major_offsets, _reference_unscaled, _reference_unbiased_var],
    ids=["offset+1", "column-major-offsets", "no-1/(1-p)", "unbiased-var"],
)
def test_planted_wrong_reference_is_caught(wrong):
    x, w, b, dy = _inputs((6, 30))
    got = _fwd_bwd(fused_layernorm_dropout, x, w, b, dy, 0.3, 21)
    _check(got, _fwd_bwd(layernorm_dropout_reference, x, w, b, dy, 0.3, 21), **_FP32)
    assert not compare(got, _fwd_bwd(wrong, x, w, b, dy, 0.3, 21), **_FP32).passed


def test_planted_backward_without_mask_is_caught():
    # a backward that forgets to regenerate the mask (plain LayerNorm gradient)
    x, w, b, dy = _inputs((6, 30))
    y, mean, rstd = layernorm_dropout_fwd(x.detach(), w.detach(), b.detach(), 0.3, 21)
    right = layernorm_dropout_bwd(dy, x.detach(), w.detach(), mean, rstd, 0.3, 21)
    no_mask = layernorm_dropout_bwd(dy, x.detach(), w.detach(), mean, rstd, 0.0, 21)
    other_seed = layernorm_dropout_bwd(dy, x.detach(), w.detach(), mean, rstd, 0.3, 22)
    ref = _fwd_bwd(layernorm_dropout_reference, x, w, b, dy, 0.3, 21)[1:]
    _check(right, ref, **_FP32)
    assert not compare(no_mask, ref, **_FP32).passed
    assert not compare(other_seed, ref, **_FP32).passed


def test_kernel_module_documents_itself():
    mod = importlib.import_module("kernels.triton.layernorm_dropout")
    assert "Shape-suffix legend" in mod.__doc__ and "tutorial" in mod.__doc__.lower()
