"""m2.manual_amp: the policy puts every op in autocast's dtype; planted policy bugs are caught."""

import dataclasses

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.amp.policy import CPU_BF16_POLICY, CUDA_FP16_POLICY

Task = REGISTRY.get("m2.manual_amp")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "model trace: same ops in the same dtypes (cpu)" in rec.checks
    assert any("fake tensors" in name for name in rec.checks)  # the CUDA float16 policy, without a GPU


def _with(cpu=CPU_BF16_POLICY, cuda=CUDA_FP16_POLICY):
    class Wrong(Task):
        policies = {"cpu": cpu, "cuda": cuda}

    return Wrong


def test_softmax_in_bfloat16_is_caught():
    wrong = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp | {"softmax"})
    expect_check_fails(_with(cpu=wrong), match="softmax")


def test_linear_left_in_float32_is_caught():
    wrong = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp - {"linear"})
    expect_check_fails(_with(cpu=wrong), match="linear")


def test_cuda_layer_norm_in_float16_is_caught_without_a_gpu():
    wrong = dataclasses.replace(
        CUDA_FP16_POLICY,
        fp32=CUDA_FP16_POLICY.fp32 - {"layer_norm"},
        lower_precision_fp=CUDA_FP16_POLICY.lower_precision_fp | {"layer_norm"},
    )
    expect_check_fails(_with(cuda=wrong), match="cuda float16")
