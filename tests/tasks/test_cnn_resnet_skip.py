"""4.03 resnet_skip: the check passes; a block without its shortcut, zero-init on the wrong
BN, a block that cuts the gradient, and a block that ignores its stride are caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.convnets import BasicBlock, Bottleneck

Task = REGISTRY.get("cnn.resnet_skip")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"plain", "resnet"}
    assert rec.metrics["first_conv_grad_norm_ratio_resnet_over_plain"] > 0


class NoShortcut(BasicBlock):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class WrongZeroInit(BasicBlock):
    def last_bn(self):
        return self.bn1


class CutsGradient(BasicBlock):
    def forward(self, x):
        return super().forward(x.detach())


class IgnoresStride(Bottleneck):
    def __init__(self, cin, width, stride=1, residual=True):
        super().__init__(cin, width, 1, residual)


def _with(basic=BasicBlock, bottleneck=Bottleneck):
    return type("Wrong", (Task,), {"blocks": {"basic": basic, "bottleneck": bottleneck}})


def test_block_without_shortcut_is_caught():
    expect_check_fails(_with(basic=NoShortcut), match="zero init")


def test_zero_init_of_the_wrong_bn_is_caught():
    expect_check_fails(_with(basic=WrongZeroInit), match="zero init")


def test_block_that_cuts_the_gradient_is_caught():
    expect_check_fails(_with(basic=CutsGradient), match="first conv gradient")


def test_block_that_ignores_stride_is_caught():
    expect_check_fails(_with(bottleneck=IgnoresStride), match="designed")
