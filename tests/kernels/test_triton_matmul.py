"""kernels.triton.matmul in the Triton interpreter: odd shapes, tails, dtypes, batches,
strides, presets, errors, and a planted wrong matmul caught by the same comparison."""

from __future__ import annotations

import importlib

import pytest
import torch

pytest.importorskip("triton")
from harness.checks import compare  # noqa: E402
from kernels.triton import MATMUL_CONFIGS, MatmulConfig, matmul, matmul_bytes, matmul_flops  # noqa: E402

mm_mod = importlib.import_module("kernels.triton.matmul")

# CPU tensors under the interpreter (this machine); CUDA when triton compiles for a GPU
DEVICE = "cpu" if importlib.import_module("kernels.triton").INTERPRETER else "cuda"


def _inputs(shape_a, shape_b, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = shape_a[-1]
    # scaled so outputs are O(1) and the fp16/bf16 tolerances are relative to that
    a = (torch.randn(shape_a, generator=g) / k**0.5).to(DEVICE, dtype)
    b = torch.randn(shape_b, generator=g).to(DEVICE, dtype)
    return a, b


def _reference(a, b):
    """fp32 (fp64 for fp32 inputs) product rounded to the input dtype."""
    wide = torch.float64 if a.dtype == torch.float32 else torch.float32
    return (a.to(wide) @ b.to(wide)).to(a.dtype)


def _check(actual, expected, **tol):
    c = compare(actual, expected, **tol)
    assert c.passed, c.message
    return c


@pytest.mark.parametrize("m, k, n", [(100, 70, 90), (1, 1, 1), (129, 63, 257), (33, 100, 17), (64, 64, 64)])
def test_fp32_odd_shapes(m, k, n):
    a, b = _inputs((m, k), (k, n))
    c = matmul(a, b)
    assert c.shape == (m, n) and c.dtype == torch.float32 and c.is_contiguous()
    # the interpreter's tl.dot is fp32 numpy: as tight as fp32 accumulation allows
    _check(c, _reference(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(dtype):
    a, b = _inputs((45, 50), (50, 37), dtype)
    c = matmul(a, b)
    assert c.dtype == dtype
    _check(c, _reference(a, b))  # the project's fp16/bf16 tolerance


def test_batched_and_broadcast_b():
    a, b = _inputs((3, 20, 40), (3, 40, 33))
    _check(matmul(a, b), _reference(a, b), rtol=1e-5, atol=1e-5)
    b2 = b[0]  # (K, N) shared by every batch: stride-0 batch axis
    out = matmul(a, b2)
    assert out.shape == (3, 20, 33)
    _check(out, _reference(a, b2), rtol=1e-5, atol=1e-5)


def test_strided_inputs_need_no_copy():
    a, b = _inputs((50, 40), (33, 50))
    at = a.t()  # (40, 50) with strides (1, 40)
    bt = b.t()  # (50, 33) with strides (1, 50)
    assert not at.is_contiguous() and not bt.is_contiguous()
    _check(matmul(at, bt), _reference(at, bt), rtol=1e-5, atol=1e-5)
    a3, _ = _inputs((40, 100), (1, 1))
    sliced = a3[:, ::2]  # column stride 2
    _check(matmul(sliced, bt), _reference(sliced, bt), rtol=1e-5, atol=1e-5)


def test_inputs_unchanged_and_output_fresh():
    a, b = _inputs((20, 30), (30, 10))
    a0, b0 = a.clone(), b.clone()
    c = matmul(a, b)
    assert torch.equal(a, a0) and torch.equal(b, b0)
    assert c.data_ptr() not in (a.data_ptr(), b.data_ptr())


def test_degenerate_sizes():
    a, b = _inputs((5, 0), (0, 7))
    assert torch.equal(matmul(a, b), torch.zeros(5, 7, device=DEVICE))  # K = 0: sum of nothing
    a, b = _inputs((0, 4), (4, 7))
    assert matmul(a, b).shape == (0, 7)


@pytest.mark.parametrize("name", ["tiny", "h_64x32x32_s5"])
def test_explicit_configs(name):
    # a config with BLOCK_K larger than K and wide tiles: masked K tail, % M wrap
    a, b = _inputs((70, 20), (20, 50))
    _check(matmul(a, b, config=name), _reference(a, b), rtol=1e-5, atol=1e-5)
    cfg = MatmulConfig(16, 64, 16, group_m=2, num_warps=2, num_stages=2)
    _check(matmul(a, b, config=cfg), _reference(a, b), rtol=1e-5, atol=1e-5)


def test_configs_are_consistent():
    for name, cfg in MATMUL_CONFIGS.items():
        t = cfg.to_triton()
        assert t.kwargs["BLOCK_M"] == cfg.block_m and t.num_warps == cfg.num_warps, name
    # every Hopper config fits sm_90 shared memory for fp16, so none is pruned there
    fp16 = torch.empty(1, dtype=torch.float16)
    configs = [c.to_triton() for n, c in MATMUL_CONFIGS.items() if n != "tiny"]
    assert len(mm_mod._prune_configs(configs, {"a_ptr": fp16})) == len(configs)
    # fp32 doubles the bytes: the 128x256x64 3-stage tile (288 KiB) must go
    fp32 = torch.empty(1, dtype=torch.float32)
    kept = mm_mod._prune_configs(configs, {"a_ptr": fp32})
    assert all(
        c.num_stages * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"]) * c.kwargs["BLOCK_K"] * 4 <= 227 * 1024 for c in kept
    )
    assert len(kept) < len(configs)
    with pytest.raises(ValueError, match="power of two"):
        MatmulConfig(24, 32, 32)


def test_flop_and_byte_counts():
    assert matmul_flops(100, 90, 70) == 2 * 100 * 90 * 70
    assert matmul_flops(2, 3, 4, batch=5) == 5 * 2 * 2 * 3 * 4
    assert matmul_bytes(2, 3, 4, itemsize=2) == (2 * 4 + 4 * 3 + 2 * 3) * 2


def test_errors():
    a, b = _inputs((4, 5), (5, 6))
    with pytest.raises(ValueError, match="inner dimensions"):
        matmul(a, b[:4])
    with pytest.raises(TypeError, match="share a dtype"):
        matmul(a, b.half())
    with pytest.raises(TypeError, match="dtype"):
        matmul(a.long(), b.long())
    with pytest.raises(ValueError, match="got shapes"):
        matmul(a[0], b)
    with pytest.raises(ValueError, match="batch sizes"):
        matmul(a.expand(2, 4, 5), b.expand(3, 5, 6))
    with pytest.raises(ValueError, match="unknown matmul config"):
        matmul(a, b, config="huge")


def test_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    common = importlib.import_module("kernels.triton._common")
    monkeypatch.setattr(common, "INTERPRETER", False)
    a, b = _inputs((4, 5), (5, 6))
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        matmul(a, b)


def test_planted_wrong_matmul_is_caught():
    # the bug a missing K-tail mask produces: the last partial K block is lost
    a, b = _inputs((40, 45), (45, 30))
    ref = _reference(a, b)
    _check(matmul(a, b), ref, rtol=1e-5, atol=1e-5)
    dropped_tail = a[:, :32] @ b[:32]
    assert not compare(dropped_tail, ref, rtol=1e-5, atol=1e-5).passed
    # and a transposed-tile bug on a square problem
    sq_a, sq_b = _inputs((32, 32), (32, 32))
    assert not compare((sq_a @ sq_b).t().contiguous(), _reference(sq_a, sq_b)).passed
