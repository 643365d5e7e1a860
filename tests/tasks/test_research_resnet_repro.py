"""research.resnet_repro: exact parameter counts, the He et al. schedule, the check (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from models.convnets import ResNet, count_params
from models.resnet_cifar import HeCifarRecipe, OptionABlock, cifar_resnet_config, lr_at, make_optimizer

Task = REGISTRY.get("research.resnet_repro")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"LR schedule, every iteration", "ResNet-20 (option A) parameter count", "loss falls"} <= set(rec.checks)


@pytest.mark.parametrize(
    ("build", "count"),
    [
        (lambda: ResNet("resnet18"), 11_689_512),
        (lambda: ResNet("resnet50"), 25_557_032),
        (lambda: ResNet(cifar_resnet_config(3), OptionABlock), 269_722),  # ResNet-20, option A
        (lambda: ResNet(cifar_resnet_config(3)), 272_474),  # option B adds 2,752
        (lambda: ResNet(cifar_resnet_config(18), OptionABlock), 1_727_962),  # ResNet-110: "1.7M"
    ],
    ids=["resnet18", "resnet50", "resnet20_a", "resnet20_b", "resnet110_a"],
)
def test_exact_parameter_counts(build, count):
    with torch.device("meta"):
        assert count_params(build()) == count


def test_option_a_shortcut_shape_and_zero_channels():
    blk = OptionABlock(16, 32, 2)
    x = torch.randn(2, 16, 8, 8)
    s = blk.shortcut(x)
    assert s.shape == (2, 32, 4, 4)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2]) and not s[:, :8].any() and not s[:, 24:].any()
    with pytest.raises(ValueError, match="option A"):
        OptionABlock(32, 16)


def test_schedule_at_the_milestones():
    r = HeCifarRecipe()
    assert [lr_at(r, s) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12
    )
    small = r.scaled(64, 32)
    assert small.milestones == (32, 48) and small.batch_size == 32
    opt, sched = make_optimizer([torch.nn.Parameter(torch.zeros(1))], small)
    got = []
    for _ in range(64):
        got.append(opt.param_groups[0]["lr"])
        sched.step()
    assert got == pytest.approx([lr_at(small, s) for s in range(64)], rel=1e-12)


def test_a_recipe_config_is_not_the_harness_training_hook():
    """The task's ``recipe`` is He et al.'s config (data), not the contract's ``recipe`` method: the
    task trains by hand and its bench must not ask the harness for train_data."""
    assert not Task.carried()
