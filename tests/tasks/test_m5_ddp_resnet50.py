"""m5.ddp_resnet50: DDP + synced BN equal one process on the full batch, per-rank BN does not
(its mutants, plain BN passed off as SyncBN among them: test_mutants.py); worked examples of
the batch norm that all-reduces its statistics, in one process."""

import pytest
import torch
from torch import nn

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.ddp import sync_bn
from models.convnets import ResNet, count_params

Task = REGISTRY.get("m5.ddp_resnet50")


@pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")
def test_check_passes_with_two_gloo_ranks():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["DDP gradients (SyncBN) = single-process gradients"]["n"] == 2 * 161  # ranks x tensors
    assert rec.checks["SyncBN statistics = single-process BN"]["n"] == 2 * 2 * 53  # ranks x (mean, var) x BN layers
    assert rec.checks["per-rank BN statistics differ from single-process BN"]["passed"]


def test_resnet50_has_torchvisions_parameter_count():
    assert count_params(ResNet("resnet50")) == 25_557_032


def test_convert_replaces_every_batchnorm_keeping_state_and_dtype():
    model = ResNet("resnet50").double()
    model.bn1.running_mean.fill_(0.5)
    sync_bn.convert(model)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 53 and all(isinstance(m, sync_bn.AllReduceBatchNorm) for m in bns)
    assert model.bn1.running_mean.dtype == torch.float64 and float(model.bn1.running_mean[0]) == 0.5


def test_without_a_process_group_it_is_plain_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5, dtype=torch.float64)
    ref = nn.BatchNorm2d(4).double()
    mine = sync_bn.convert(nn.BatchNorm2d(4).double())
    torch.testing.assert_close(mine(x), ref(x))
    torch.testing.assert_close(mine.running_var, ref.running_var)


def test_refuses_a_vector_input():
    with pytest.raises(ValueError, match=r"\(N, C, ...\)"):
        sync_bn.AllReduceBatchNorm(4)(torch.randn(4))
