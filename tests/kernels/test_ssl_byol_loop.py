"""kernels.ssl.byol's loop pieces (research.byol): train_byol's spread schedule, online_spread's mode."""

import torch

from kernels.ssl import byol
from models.mlp import MLP, MLPConfig


def _nets():
    torch.manual_seed(0)
    enc = MLP(MLPConfig(in_features=64, hidden=(16,), out_features=8))
    return byol.BYOLNets(enc, byol.mlp_head(8, 8, hidden=16), byol.predictor(8))


def test_train_byol_takes_the_spread_at_0_every_k_and_the_end():
    nets, x = _nets(), torch.rand(40, 64)
    loss = lambda v1, v2: byol.byol_loss(nets, v1, v2)  # noqa: E731 - one line
    at, spreads, (steps, losses) = byol.train_byol(nets, loss, byol.ema_update_, x, x[:20], steps=7, batch=8,
                                                   lr=1e-3, tau_base=0.99, seed=0, every=3)  # fmt: skip
    assert (
        at == [0, 3, 6, 7] and len(spreads) == 4 and steps == [0, 6]
    )  # losses on train_two_views's own every-10 schedule
    assert nets.training and all(0 <= s for s in spreads)


def test_online_spread_uses_eval_mode_and_restores_train_mode():
    nets, x = _nets(), torch.rand(20, 64)
    nets.eval()
    want = byol.spread(nets.online(x))
    nets.train()
    assert byol.online_spread(nets, x) == want and nets.training
