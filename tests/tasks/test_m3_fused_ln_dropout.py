"""m3.fused_ln_dropout: fused kernels equal the reference with the same Philox mask; planted bugs are caught.

The nvcc compile (~5-20 s) runs once, in test_check_passes; planted-bug tests skip it.
"""

import shutil
import sys

import pytest
import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.rng import philox

Task = REGISTRY.get("m3.fused_ln_dropout")
mod = sys.modules[Task.__module__]


class NoCompile(Task):
    def compile_report(self, ctx):
        pass


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = set(rec.checks)
    assert {
        "eager_same_mask",
        "cpp_fused",
        "triton_fused",
        "cpp_fused backward",
        "triton_fused backward",
        "eager: drop rate p",
        "Philox mask drops a fraction p",
    } <= names
    if shutil.which("nvcc"):
        assert rec.checks["layernorm_dropout.cu compiles for sm_90"]["passed"]
        table = next(t for t in rec.tables if t["name"].startswith("ptxas resources"))
        assert any("layer_norm_dropout_forward_kernel<float" in r["kernel"] for r in table["rows"])
        assert "nvcc_max_registers" in rec.metrics and "nvcc_spill_bytes_total" in rec.metrics


def _shifted_mask(self, x, w, b, p, seed):
    def run():
        y = F.layer_norm(x, (x.shape[-1],), w, b)
        keep = philox.dropout_mask(seed, torch.arange(1, x.numel() + 1), p).view(x.shape)  # offset + 1
        return torch.where(keep, y / (1 - p), 0.0) if p > 0 else y

    return run


def test_mask_offset_plus_one_is_caught():
    wrong = planted(NoCompile, "cpp_fused", _shifted_mask)
    expect_check_fails(wrong, match="cpp_fused")


def test_triton_without_dropout_scale_is_caught():
    def unscaled(self, x, w, b, p, seed):
        from kernels.triton import layernorm_dropout_fwd

        return lambda: layernorm_dropout_fwd(x, w, b, p, seed)[0] * (1 - p)

    expect_check_fails(planted(NoCompile, "triton_fused", unscaled), match="triton_fused")


def test_eager_dropout_without_scaling_is_caught():
    def eager_unscaled(self, x, w, b, p, seed):
        return lambda: F.dropout(F.layer_norm(x, (x.shape[-1],), w, b), p) * (1 - p)

    expect_check_fails(planted(NoCompile, "eager", eager_unscaled), match="kept values are LN")


def test_backward_with_a_different_mask_is_caught():
    class WrongBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b, p, seed):
            ctx.save_for_backward(x, w, b)
            ctx.p, ctx.seed = p, seed
            from kernels import cpp

            return cpp.layer_norm_dropout_forward(x, w, b, p=p, seed=seed)[0]

        @staticmethod
        def backward(ctx, dy):
            x, w, b = (t.detach().double().requires_grad_() for t in ctx.saved_tensors)
            with torch.enable_grad():
                y = mod.reference(x, w, b, ctx.p, ctx.seed + 1)  # the backward regenerates the wrong mask
                gx, gw, gb = torch.autograd.grad(y, (x, w, b), dy.double())
            return gx.to(dy.dtype), gw.to(dy.dtype), gb.to(dy.dtype), None, None

    class Wrong(NoCompile):
        def autograd_versions(self, device):
            out = super().autograd_versions(device)
            out["cpp_fused"] = lambda x, w, b, p, s: WrongBackward.apply(x, w, b, p, s)
            return out

    expect_check_fails(Wrong, match="cpp_fused backward")


def test_failed_compile_is_caught(monkeypatch):
    from kernels import cuda

    if not shutil.which("nvcc"):
        pytest.skip("needs nvcc")

    def broken(source, arch="sm_90", **kw):
        return cuda.CompileReport(
            source=source,
            arch=arch,
            success=False,
            returncode=1,
            command=("nvcc",),
            seconds=0.1,
            kernels=(),
            log="error: expected a ';'",
        )

    monkeypatch.setattr(cuda, "compile_check", broken)

    class OnlyCompile(Task):
        def check(self, ctx):
            self.compile_report(ctx)

    expect_check_fails(OnlyCompile, match="nvcc failed on layernorm_dropout.cu")


def test_reference_equals_layer_norm_times_mask():
    x, w, b = torch.randn(6, 37), torch.randn(37), torch.randn(37)
    keep = philox.dropout_mask(5, x.numel(), 0.3).view(x.shape)
    expected = F.layer_norm(x.double(), (37,), w.double(), b.double()) * keep / 0.7
    torch.testing.assert_close(mod.reference(x, w, b, 0.3, 5), expected)
