"""m3.fused_ln_dropout: fused kernels equal the reference with the same Philox mask (its mutants:
test_mutants.py; they fail before the nvcc compile at the end of the check). A failed compile is
caught here: that bug lives in the toolchain, not in a class attribute.
"""

import shutil

import pytest
import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.layers.ln_dropout import ln_dropout_reference
from kernels.rng import philox

Task = REGISTRY.get("m3.fused_ln_dropout")


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
    torch.testing.assert_close(ln_dropout_reference(x, w, b, 0.3, 5), expected)
