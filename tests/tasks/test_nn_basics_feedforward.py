"""3.01 feedforward: shapes, registered parameters, learning; planted module bugs are caught."""

import torch
from torch import nn

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.mlp import MLP, MLPConfig

Task = REGISTRY.get("nn_basics.feedforward")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["n_params"] == 4 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert any(c["name"] == "train loss" for c in rec.curves)


class ListNotRegistered(nn.Module):
    """Keeps the hidden layers in a plain Python list: nn.Module never sees their parameters."""

    def __init__(self, cfg):
        super().__init__()
        widths = [4, *cfg.hidden]
        self.hidden = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        self.out = nn.Linear(widths[-1], 3)

    def forward(self, x):
        if x[0].numel() != 4:
            raise ValueError("expects 4 features")
        x = x.reshape(x.shape[0], -1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


class DetachesFirstLayer(MLP):
    """Detaches after the first layer: its weights never get a gradient."""

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != 4:
            raise ValueError("expects 4 features")
        h = self.net[0](x).detach()
        for layer in self.net[1:]:
            h = layer(h)
        return h


class FrozenOutput(MLP):
    """Forgets the non-linearity and scales the logits to nothing: cannot separate iris."""

    def forward(self, x):
        return super().forward(x) * 1e-6 + torch.tensor([1.0, 0.0, 0.0], device=x.device)


def _with(build):
    return type("T", (Task,), {"build": lambda self, cfg: build(cfg)})


def test_unregistered_layers_are_caught():
    expect_check_fails(_with(ListNotRegistered), match="registered parameter shapes")


def test_extra_parameters_are_caught():
    expect_check_fails(_with(lambda cfg: MLP(MLPConfig(4, cfg.hidden + (8,), 3))), match="registered parameter")


def test_missing_gradient_is_caught():
    expect_check_fails(_with(lambda cfg: DetachesFirstLayer(MLPConfig(4, cfg.hidden, 3))), match="no gradient")


def test_net_that_cannot_learn_is_caught():
    expect_check_fails(_with(lambda cfg: FrozenOutput(MLPConfig(4, cfg.hidden, 3))), match="iris")
