"""advanced.quantization: hand affine quantization = torch's, PT2E int8 accuracy and size (mutants: test_mutants.py)."""

import warnings

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.compress import affine

Task = REGISTRY.get("advanced.quantization")
needs_torchao = pytest.mark.skipif(bool(capabilities.missing(["torchao"])), reason="needs torchao")


@needs_torchao
def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"hand quantize = torch.quantize_per_tensor", "int8 file >= 3x smaller"} <= set(rec.checks)


def test_tie_with_odd_zero_point_rounds_after_adding_it():
    # x / s = -9.5, z = 3: torch rounds -6.5 half to even (-6); round(-9.5) + 3 would give -7
    x = torch.tensor([-4.75, 0.0, 1.25])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.quantize_per_tensor(x, 0.5, 3, torch.qint8).int_repr()
    assert ref.tolist() == [-6, 3, 6]
    assert affine.quantize(x, 0.5, 3, -128, 127).tolist() == [-6, 3, 6]


def test_minmax_qparams_make_zero_exact_and_cover_the_range():
    scale, zp = affine.minmax_qparams(-1.0, 3.0, 0, 255)
    assert scale == pytest.approx(4.0 / 255) and zp == 64
    x = torch.tensor([-1.0, 0.0, 3.0])
    back = affine.dequantize(affine.quantize(x, scale, zp, 0, 255), scale, zp)
    assert back[1] == 0.0 and (back - x).abs().max() <= scale / 2
    with pytest.raises(ValueError, match="qmin < qmax"):
        affine.minmax_qparams(0.0, 1.0, 5, 5)


def test_fake_quantize_gradient_is_straight_through_inside_the_range():
    x = torch.tensor([-3.0, -0.3, 0.0, 0.7, 3.0], requires_grad=True)
    y = affine.fake_quantize(x, 0.1, 0, -8, 7)  # representable range [-0.8, 0.7]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    ref = torch.fake_quantize_per_tensor_affine(x.detach(), 0.1, 0, -8, 7)
    torch.testing.assert_close(y.detach(), ref)


@needs_torchao
def test_drop_unused_state_removes_the_float_weights():
    from kernels.compress.ao import drop_unused_state, pt2e_int8
    from kernels.compress.digits import mlp

    torch.manual_seed(0)
    model = mlp(32).eval()
    x = torch.rand(16, 64)
    gm = pt2e_int8(model, x[:4], x)
    assert "0.weight" in gm.state_dict()
    kept = drop_unused_state(gm).state_dict()
    assert "0.weight" not in kept and kept["_frozen_param0"].dtype == torch.int8
    torch.testing.assert_close(gm(x), gm(x))  # still runs after the deletion
