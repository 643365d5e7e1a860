"""deployment.qat: fake quantizers placed, fake quant = quantize -> dequantize, STE mask, QAT beats PTQ at 2 bits
(mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.compress import affine

Task = REGISTRY.get("deployment.qat")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["torchao"])), reason="needs torchao")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"fake quantizer on every Linear", "QAT beats PTQ at equal bits"} <= set(rec.checks)


def test_torchao_int4_scale_is_max_over_seven_and_a_half():
    from kernels.compress import qat

    lin = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with torch.no_grad():
        lin[0].weight.copy_(torch.tensor([[1.5, -0.5, 0.2, 0.0], [-3.0, 1.0, 0.5, 0.25]]))
    qat.prepare(lin, 4)
    wq = lin[0].weight_fake_quantizer(lin[0].weight)
    torch.testing.assert_close(lin[0].weight_fake_quantizer.scale, torch.tensor([[0.2], [0.4]]))
    # row 0: 1.5/0.2 = 7.5 -> 8 clamps to 7 (1.4); -0.5/0.2 = -2.5 -> -2 (half to even)
    torch.testing.assert_close(wq[0], torch.tensor([1.4, -0.4, 0.2, 0.0]))
    torch.testing.assert_close(affine.symmetric_qparams(lin[0].weight, 4), torch.tensor([[0.2], [0.4]]))


def test_bad_bit_width_is_refused_by_name():
    from kernels.compress import qat

    with pytest.raises(ValueError, match="weight bits must be one of"):
        qat.weight_config(5)
