"""10.10 Self-supervised BYOL.

Compared: BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, arXiv:2006.07733) on
scikit-learn's 8x8 digits (``kernels.ssl.byol``): online encoder (64 -> 128 -> 32) + projector
and predictor (32 -> 64 -> 32, BatchNorm); a target network that is an EMA of the online one,
tau rising from 0.996 to 1 on BYOL's cosine; loss 2 - 2 cos(q(z1), z'2) symmetrised over the
views, the target side under stop-gradient. Against two ablations on the same data, seed and
budget: no predictor, and no stop-gradient (the online network as its own target, gradients
through both branches). Collapse is read from the spread of held-out projections
(``kernels.ssl.byol.spread``: about 1 spread over the sphere, 0 for a constant).

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
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.ssl import byol, wrong
from kernels.ssl.probe import linear_probe
from kernels.ssl.train import two_view_step
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


ARMS = {  # name -> (predictor factory, target branch, regression loss)
    "byol": (byol.predictor, byol.target_projection, byol.regression_loss),
    "no_predictor": (wrong.no_predictor, byol.target_projection, byol.regression_loss),
    "no_stop_gradient": (byol.predictor, wrong.online_as_target, wrong.regress_no_detach),
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
    make_predictor = staticmethod(byol.predictor)
    target_fn = staticmethod(byol.target_projection)
    regress = staticmethod(byol.regression_loss)
    symmetric_loss = staticmethod(byol.byol_loss)
    ema = staticmethod(byol.ema_update_)
    mutants = (
        Mutant("no_predictor", "the predictor removed (online projection regressed directly)",
               {"make_predictor": staticmethod(wrong.no_predictor)}, match="collapse"),
        Mutant("gradient_through_target", "no stop-gradient: the target branch is the online network with its graph",
               {"target_fn": staticmethod(wrong.online_as_target), "regress": staticmethod(wrong.regress_no_detach)},
               match="stop-gradient"),
        Mutant("ema_weights_swapped", "target <- (1 - tau) target + tau online",
               {"ema": staticmethod(wrong.ema_swapped)}, match="EMA"),
        Mutant("one_sided_loss", "only q(z1) -> z'2, doubled: not symmetrised",
               {"symmetric_loss": staticmethod(wrong.one_sided)}, match="symmetric"),
    )  # fmt: skip

    def check(self, ctx):
        cfg = ctx.configs[0]
        tau = 1 - (1 - 0.996) * (math.cos(math.pi * 3 / 10) + 1) / 2  # step 3 of 10, by hand
        ctx.assert_close(torch.tensor(byol.cosine_tau(3, 10, 0.996)), torch.tensor(tau), name="cosine tau = hand")
        ctx.expect(byol.cosine_tau(0, 10, 0.996) == 0.996 and byol.cosine_tau(10, 10, 0.996) == 1.0,
                   "cosine tau must start at tau_base and end at 1", name="cosine tau endpoints")  # fmt: skip
        torch.manual_seed(ctx.rng_seed)
        online, target = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
        before = [p.detach().clone() for p in target.parameters()]
        self.ema(target, online, tau)
        for name, t0, o, t1 in zip(("weight", "bias"), before, online.parameters(), target.parameters(), strict=True):
            ctx.assert_close(t1, tau * t0 + (1 - tau) * o.detach(), name=f"EMA update = hand ({name})")
        p, z = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[1.0, 1.0]], dtype=torch.float64)
        ctx.assert_close(self.regress(p, z), torch.tensor(2 - math.sqrt(2), dtype=torch.float64),
                         name="loss = 2 - 2 cos (hand)")  # fmt: skip
        nets = self._nets(cfg, ctx.rng_seed).double()
        x, g = digits_split(seed=0, dtype=torch.float64)[0][:32], ctx.generator()
        v1, v2 = digit_view(x, g), digit_view(x, g)
        ctx.assert_close(self._loss(nets, v1, v2), self._loss(nets, v2, v1), name="loss symmetric in the views")
        grads = torch.autograd.grad(self._loss(nets, v1, v2), nets.trainable())
        ref = torch.autograd.grad(byol.loss_with_constant_targets(nets, v1, v2), nets.trainable())
        for i, (got, want_g) in enumerate(zip(grads, ref, strict=True)):
            ctx.assert_close(got, want_g, name="stop-gradient: online gradient = gradient with constant targets",
                             where=f"parameter {i}")  # fmt: skip
        ctx.expect(all(q.grad is None and not q.requires_grad for q in nets.target.parameters()),
                   "the target network's parameters require or received gradients",
                   name="stop-gradient on target")  # fmt: skip
        (_, spreads), _, _ = self._train(ctx, cfg)
        ctx.expect(spreads[-1] >= cfg.min_spread, f"the projections collapse: spread {spreads[-1]:.3f} < floor "
                   f"{cfg.min_spread} after {cfg.steps} steps (random init: {spreads[0]:.3f})",
                   name="no collapse (spread of projections)")  # fmt: skip

    def _loss(self, nets, v1, v2, target_fn=None, regress=None):
        return self.symmetric_loss(nets, v1, v2, target_fn or self.target_fn, regress or self.regress)

    def _nets(self, cfg, seed, make_predictor=None):
        torch.manual_seed(seed)
        enc = MLP(MLPConfig(in_features=64, hidden=(128,), out_features=cfg.rep_dim))
        proj = byol.mlp_head(cfg.rep_dim, cfg.proj_dim)  # built before the predictor: the seeded init order
        return byol.BYOLNets(enc, proj, (make_predictor or self.make_predictor)(cfg.proj_dim))

    def _train(self, ctx, cfg, arm=None):
        """Train one arm (None: the task's own pieces): (steps, spreads of held-out projections), loss
        curve, (nets, the digits split)."""
        make_pred, target_fn, regress = ARMS[arm] if arm else (None, None, None)
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0))
        nets = self._nets(cfg, ctx.rng_seed, make_pred).to(ctx.device)
        *spreads, curve = byol.train_byol(nets, lambda v1, v2: self._loss(nets, v1, v2, target_fn, regress), self.ema,
                                          xtr, xte, steps=cfg.steps, batch=cfg.batch, lr=cfg.lr,
                                          tau_base=cfg.tau_base, seed=ctx.rng_seed)  # fmt: skip
        return spreads, curve, (nets, xtr, ytr, xte, yte)

    def bench(self, ctx):
        for arm in ARMS:
            (at, spreads), (steps, losses), (nets, *data) = self._train(ctx, ctx.configs[0], arm)
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
        nets = self._nets(config, ctx.rng_seed, make_pred).to(ctx.device)
        opt, g = torch.optim.Adam(nets.trainable(), lr=config.lr), ctx.generator()

        def step():  # one Adam step on two fresh views, then the EMA at tau_base
            two_view_step(lambda v1, v2: byol.byol_loss(nets, v1, v2, target_fn, regress), opt, x, g)
            byol.ema_update_(nets.target, nets.online, config.tau_base)

        return Prepared(fn=step, items=config.batch, item_unit="images")
