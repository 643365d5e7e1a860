"""deployment.mobile: ExecuTorch .pte programs = eager, dynamic batch, static refusal (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("deployment.mobile")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["executorch"])), reason="needs executorch")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["XNNPACK .pte = eager"]["n"] == 3  # the example batch and two unseen ones


def test_lower_counts_delegates_and_refuses_an_unknown_backend():
    from kernels.export.pte import PteModule, lower

    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(2, 4)
    lo = lower(m, x, backend="xnnpack")
    assert lo.delegate_calls >= 1 and not any("addmm" in o or "linear" in o for o in lo.other_ops)
    plain = lower(m, x, backend="portable")
    assert plain.delegate_calls == 0
    with torch.no_grad():
        torch.testing.assert_close(PteModule(plain.buffer)(x), m(x))
    with pytest.raises(ValueError, match="unknown ExecuTorch backend"):
        lower(m, x, backend="coreml")
