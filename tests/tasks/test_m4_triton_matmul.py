"""m4 triton_matmul: the interpreter check passes (its mutants, the K-tail kernel and TF32 inputs: test_mutants.py)."""

import re

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("m4.triton_matmul")

pytestmark = pytest.mark.skipif(capabilities.missing(["triton"]) != [], reason="needs triton")

pytest.importorskip("triton")


def test_check_passes_in_the_interpreter():
    rec = run_check(Task)
    names = {re.sub(r" \((float32|bfloat16)\)$", "", n) for n in rec.checks}  # per-dtype entries
    assert {"torch_matmul", "triton", "rejects mismatched inner dimensions", "rejects mixed dtypes"} <= names
    assert all(c["passed"] for c in rec.checks.values())
    # one entry per dtype now: seeds x shapes each
    assert sum(c["n"] for k, c in rec.checks.items() if k.startswith("triton (")) == 2 * 3 * len(Task.sizes["tiny"])


def test_the_planted_kernel_is_right_where_k_is_a_tile_multiple():
    # so the no_k_tail mutant fails because of the tail and nothing else
    a, b = torch.randn(40, 64), torch.randn(64, 50)
    from kernels.triton.matmul_no_k_tail import matmul_no_k_tail

    torch.testing.assert_close(matmul_no_k_tail(a, b), a @ b, rtol=1e-5, atol=1e-4)
