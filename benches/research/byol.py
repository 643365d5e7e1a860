"""10.10 Self-supervised BYOL.

Compared: BYOL (Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", NeurIPS 2020, arXiv:2006.07733) on scikit-learn's 8x8 digits (``kernels.ssl``): an
online encoder (64 -> 128 -> 32) + projector (32 -> 64 -> 32, BatchNorm) + predictor (same
shape), and a target network that is an exponential moving average of the online one, with tau
rising from tau_base = 0.996 to 1 on BYOL's cosine schedule; loss 2 - 2 cos(q(z1), z'2) plus the
same with the views swapped, the target side under stop-gradient. Against two ablations on the
same data, seed and budget: no predictor, and no stop-gradient (the target branch is the online
network itself, gradients flowing through both branches). Timed: one training step of each arm.

Check (tiny): the cosine schedule and the EMA update equal a hand computation (2x2 linear layers,
step 3 of 10); the regression loss equals 2 - 2 cos on a worked example and the symmetrised loss
is symmetric in the views; the online gradient equals the gradient with the target projections
replaced by constants (stop-gradient) and the target's parameters get no gradient. Then a short
training: no collapse -- the spread of the online projections of held-out digits (per-dimension
std of the l2-normalised projections times sqrt(D), ``kernels.ssl.byol.spread``: about 1 for
outputs spread over the sphere, 0 for a constant) ends above the stated floor.

Bench: training steps/s of the three arms; the loss and spread curves of each arm; spread and
linear-probe accuracy at the end.

Lesson: with no negatives, the trivial solution (every image -> one point) minimises the loss,
and nothing in the loss forbids it. BYOL avoids it by asymmetry: only the online branch gets
gradients, through a predictor, towards a slowly moving target. Remove the stop-gradient and the
two branches meet at the constant in a few hundred steps here; remove the predictor and the
online network only chases a lagging copy of itself, and its projections never spread out
(on this short budget they stay near their random-init spread, about 0.15). Chen & He (SimSiam,
CVPR 2021, section 4) showed both ablations collapse on ImageNet (0.1 % linear accuracy without
stop-gradient; 0.1 % without predictor), and that the EMA is helpful but not required. Anchor:
BYOL's linear evaluation reaches 74.3 % top-1 on ImageNet with a ResNet-50 (Grill et al. 2020,
Table 1), without negative pairs.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.ssl import byol
from kernels.ssl.probe import linear_probe
from kernels.ssl.train import train_two_views
from kernels.ssl.views import digit_view
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class BYOLConfig:
    """Networks, schedule and training budget."""

    rep_dim: int = 32
    """encoder output (the representation)"""
    proj_dim: int = 32
    """projector and predictor output"""
    batch: int = 128
    """images per step (two views each)"""
    steps: int = 150
    """Adam steps (also K of the cosine tau schedule)"""
    lr: float = 1e-3
    """Adam learning rate"""
    tau_base: float = 0.996
    """EMA decay at step 0 (BYOL's value)"""
    min_spread: float = 0.4
    """check: final spread of held-out projections at least this (collapsed arms end near 0.1-0.2)"""


def _mlp(d_in, d_out, bn=True):
    return MLP(MLPConfig(in_features=d_in, hidden=(64,), out_features=d_out, batch_norm=bn))


def _predictor(cfg):
    return _mlp(cfg.proj_dim, cfg.proj_dim)


def _no_predictor(cfg):
    return nn.Identity()


def _online_as_target(nets, x):
    return nets.online(x)  # the "target" is the online network, graph kept


def _regress_no_detach(p, z):
    return (2.0 - 2.0 * F.cosine_similarity(p, z, dim=-1)).mean()


def _ema_swapped(target, online, tau):
    byol.ema_update_(target, online, 1.0 - tau)


def _one_sided(nets, v1, v2, target_fn=byol.target_projection, loss_fn=byol.regression_loss):
    return 2 * loss_fn(nets.predictor(nets.online(v1)), target_fn(nets, v2))


ARMS = {  # name -> (predictor factory, target branch, regression loss)
    "byol": (_predictor, byol.target_projection, byol.regression_loss),
    "no_predictor": (_no_predictor, byol.target_projection, byol.regression_loss),
    "no_stop_gradient": (_predictor, _online_as_target, _regress_no_detach),
}


@task("research.byol", seed="10.10", title="self-supervised BYOL")
class BYOL(TrainingRun):
    __doc__ = __doc__
    variants = tuple(ARMS)
    sizes = {"tiny": BYOLConfig(), "cpu": BYOLConfig(steps=300, batch=256)}
    metrics = {f"spread_{a}": f"final spread of held-out projections, arm {a} (1: spread out, 0: collapsed)"
               for a in ARMS} | {"probe_acc_byol": "linear-probe held-out accuracy of the BYOL encoder"}  # fmt: skip
    claims = (
        metric("spread_byol", ">=", 0.4, text="BYOL's projections stay spread out (spread >= 0.4)"),
        metric("spread_no_predictor", "<=", 0.3, text="without the predictor the projections collapse (spread <= 0.3)"),
        metric("spread_no_stop_gradient", "<=", 0.3,
               text="without the stop-gradient the projections collapse (spread <= 0.3)"),
    )  # fmt: skip
    make_predictor = staticmethod(_predictor)
    target_fn = staticmethod(byol.target_projection)
    regress = staticmethod(byol.regression_loss)
    symmetric_loss = staticmethod(byol.byol_loss)
    ema = staticmethod(byol.ema_update_)
    mutants = (
        Mutant("no_predictor", "the predictor removed (online projection regressed directly)",
               {"make_predictor": staticmethod(_no_predictor)}, match="collapse"),
        Mutant("gradient_through_target", "no stop-gradient: the target branch is the online network with its graph",
               {"target_fn": staticmethod(_online_as_target), "regress": staticmethod(_regress_no_detach)},
               match="stop-gradient"),
        Mutant("ema_weights_swapped", "target <- (1 - tau) target + tau online", {"ema": staticmethod(_ema_swapped)},
               match="EMA"),
        Mutant("one_sided_loss", "only q(z1) -> z'2, doubled: not symmetrised",
               {"symmetric_loss": staticmethod(_one_sided)}, match="symmetric"),
    )  # fmt: skip

    def check(self, ctx):
        cfg = ctx.configs[0]
        k, K, base = 3, 10, 0.996
        tau = 1 - (1 - base) * (math.cos(math.pi * k / K) + 1) / 2
        ctx.assert_close(torch.tensor(byol.cosine_tau(k, K, base)), torch.tensor(tau), name="cosine tau = hand")
        ctx.expect(byol.cosine_tau(0, K, base) == base and byol.cosine_tau(K, K, base) == 1.0,
                   "cosine tau must start at tau_base and end at 1", name="cosine tau endpoints")  # fmt: skip
        online, target = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
        with torch.no_grad():
            online.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]])), online.bias.fill_(1.0)
            target.weight.copy_(torch.tensor([[0.5, -1.0], [0.0, 2.0]])), target.bias.fill_(-1.0)
        self.ema(target, online, tau)
        want = [[tau * t + (1 - tau) * o for t, o in zip(tr, orow, strict=True)]
                for tr, orow in zip([[0.5, -1.0], [0.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]], strict=True)]  # fmt: skip
        ctx.assert_close(target.weight, torch.tensor(want, dtype=torch.float64), name="EMA update = hand (weight)")
        ctx.assert_close(target.bias, torch.full((2,), -tau + (1 - tau), dtype=torch.float64),
                         name="EMA update = hand (bias)")  # fmt: skip
        p, z = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[1.0, 1.0]], dtype=torch.float64)
        ctx.assert_close(self.regress(p, z), torch.tensor(2 - math.sqrt(2), dtype=torch.float64),
                         name="loss = 2 - 2 cos (hand)")  # fmt: skip
        torch.manual_seed(ctx.rng_seed)
        nets = self._nets(cfg).double()
        x, g = digits_split(seed=0, dtype=torch.float64)[0][:32], ctx.generator()
        v1, v2 = digit_view(x, g), digit_view(x, g)
        ctx.assert_close(self._loss(nets, v1, v2), self._loss(nets, v2, v1), name="loss symmetric in the views")
        grads = torch.autograd.grad(self._loss(nets, v1, v2), nets.trainable())
        t1, t2 = nets.target(v1).detach(), nets.target(v2).detach()  # (N, D) constants
        ref = byol.regression_loss(nets.predictor(nets.online(v1)), t2) + byol.regression_loss(
            nets.predictor(nets.online(v2)), t1
        )
        for i, (got, want_g) in enumerate(zip(grads, torch.autograd.grad(ref, nets.trainable()), strict=True)):
            ctx.assert_close(got, want_g, name="stop-gradient: online gradient = gradient with constant targets",
                             where=f"parameter {i}")  # fmt: skip
        ctx.expect(
            all(q.grad is None and not q.requires_grad for q in nets.target.parameters()),
            "the target network's parameters require or received gradients",
            name="stop-gradient on target",
        )
        spreads, _, _ = self._train(ctx, cfg)
        ctx.expect(spreads[-1] >= cfg.min_spread, f"the projections collapse: spread {spreads[-1]:.3f} < floor "
                   f"{cfg.min_spread} after {cfg.steps} steps (random init: {spreads[0]:.3f})",
                   name="no collapse (spread of projections)")  # fmt: skip

    def _loss(self, nets, v1, v2):
        return self.symmetric_loss(nets, v1, v2, self.target_fn, self.regress)

    def _nets(self, cfg, make_predictor=None):
        enc = MLP(MLPConfig(in_features=64, hidden=(128,), out_features=cfg.rep_dim))
        return byol.BYOLNets(enc, _mlp(cfg.rep_dim, cfg.proj_dim), (make_predictor or self.make_predictor)(cfg))

    def _train(self, ctx, cfg, arm=None):
        """Train one arm (None: the task's own pieces); spread of held-out projections every 10 steps."""
        make_pred, target_fn, regress = ARMS[arm] if arm else (None, self.target_fn, self.regress)
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0))
        torch.manual_seed(ctx.rng_seed)
        nets = self._nets(cfg, make_pred).to(ctx.device)
        spreads = [self._spread(nets, xte)]

        def after(step):
            self.ema(nets.target, nets.online, byol.cosine_tau(step + 1, cfg.steps, cfg.tau_base))
            if (step + 1) % 10 == 0 or step + 1 == cfg.steps:
                spreads.append(self._spread(nets, xte))

        loss = lambda v1, v2: self.symmetric_loss(nets, v1, v2, target_fn, regress)  # noqa: E731 - one line
        curve = train_two_views(loss, nets.trainable(), xtr, steps=cfg.steps, batch=cfg.batch, lr=cfg.lr,
                                seed=ctx.rng_seed, after_step=after)  # fmt: skip
        return spreads, curve, (nets, xtr, ytr, xte, yte)

    @staticmethod
    def _spread(nets, x):
        nets.eval()
        out = byol.spread(nets.online(x))
        nets.train()
        return out

    def bench(self, ctx):
        cfg = ctx.configs[0]
        for arm in ARMS:
            spreads, (steps, losses), (nets, *data) = self._train(ctx, cfg, arm)
            at = [0, *range(10, cfg.steps + 1, 10)] + ([cfg.steps] if cfg.steps % 10 else [])
            ctx.curve("spread of held-out projections", at, spreads, y_label="spread (1 spread out, 0 collapsed)",
                      series=arm)  # fmt: skip
            ctx.curve("BYOL loss", steps, losses, y_label="loss (batch)", series=arm)
            ctx.metric(f"spread_{arm}", spreads[-1])
            if arm == "byol":
                ctx.metric("probe_acc_byol", linear_probe(nets.encoder, *data))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        make_pred, target_fn, regress = ARMS[impl]
        x = digits_split(seed=0)[0][: config.batch].to(ctx.device)
        torch.manual_seed(ctx.rng_seed)
        nets = self._nets(config, make_pred).to(ctx.device)
        opt, g = torch.optim.Adam(nets.trainable(), lr=config.lr), ctx.generator()

        def step():
            loss = byol.byol_loss(nets, digit_view(x, g), digit_view(x, g), target_fn, regress)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            byol.ema_update_(nets.target, nets.online, config.tau_base)

        return Prepared(fn=step, items=config.batch, item_unit="images")
