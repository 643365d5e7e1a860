"""8.10 Contrastive learning (SimCLR).

Compared: SimCLR's NT-Xent loss (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for
Contrastive Learning of Visual Representations", ICML 2020, arXiv:2002.05709, eq. 1) written as
one (2N)-way cross-entropy over the similarity matrix with its diagonal masked
(``kernels.ssl.contrastive``), against ``pytorch-metric-learning``'s ``NTXentLoss``, which
gathers positive and negative pairs from labels. An encoder (64 -> 128 -> 16) with a projection
head (16 -> 64 -> 32, BatchNorm) trains on two views of sklearn's 8x8 digits (1-pixel shift,
brightness, noise, cutout: ``kernels.ssl.views``); a linear probe on its frozen features (all
training labels) rates it against the untrained encoder. Timed: one training step per loss.

Lesson: NT-Xent asks each view to pick its partner out of the 2N - 1 other views of the batch: a
softmax cross-entropy over cosine similarities, sharpened by a temperature (the paper's section
5.1: l2-normalised projections with a tuned temperature beat unnormalised ones). The
self-similarity s_ii = 1 is the largest entry: unmasked, it would swamp the softmax. One masked
matrix and one cross-entropy cost two matmul-sized ops; a pair-gathering implementation indexes
O(N^2) pairs. The augmentations define what the encoder learns to ignore; SimCLR's ablations
(their figure 5) find crop + colour distortion the pair that matters. Anchor: a linear probe on
SimCLR features reaches 76.5 % top-1 on ImageNet with a ResNet-50 (4x) (Chen et al. 2020,
abstract and Table 6), matching a supervised ResNet-50; on 8x8 digits the gain over random
features is a few points: raw digits are nearly linearly separable already.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.ssl.byol import mlp_head
from kernels.ssl.contrastive import nt_xent, nt_xent_by_hand, nt_xent_pml
from kernels.ssl.probe import linear_probe
from kernels.ssl.train import train_two_views, two_view_step
from kernels.ssl.wrong import no_positive_term, no_temperature, one_direction, positives_shifted, unmasked
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class SimCLRConfig:
    """Network, loss and training budget."""

    rep_dim: int = 16
    """encoder output, what the probe reads (narrow: random 32-d features of a digit already probe at ~94 %)"""
    proj_dim: int = 32
    """projection head output (what the loss sees)"""
    temperature: float = 0.5
    """NT-Xent temperature"""
    batch: int = 128
    """images per step (2 x batch views)"""
    steps: int = 200
    """Adam steps"""
    lr: float = 1e-3
    """Adam learning rate"""
    min_gain_pts: float = 1.0
    """check: trained probe accuracy minus random-init probe accuracy, at least this many points"""


@task("advanced.simclr", seed="8.10", title="contrastive learning (SimCLR)")
class SimCLR(TrainingRun):
    __doc__ = __doc__
    variants = ("nt_xent_masked_matrix", "pytorch_metric_learning")
    sizes = {"tiny": SimCLRConfig(), "cpu": SimCLRConfig(batch=256, steps=600)}
    metrics = {
        "probe_acc_random": "linear-probe held-out accuracy of the random-init encoder",
        "probe_acc_trained": "linear-probe held-out accuracy of the SimCLR-trained encoder",
        "probe_gain_pts": "trained minus random-init probe accuracy, points",
    }
    claims = (
        metric("probe_gain_pts", ">=", 1.0, text="SimCLR training adds >= 1 point of linear-probe accuracy on digits"),
        speedup(
            "nt_xent_masked_matrix",
            over="pytorch_metric_learning",
            at_least=2.0,
            text="the masked-matrix NT-Xent >= 2x the training steps/s of pair-gathering NTXentLoss",
        ),
    )
    loss = staticmethod(nt_xent)
    mutants = tuple(
        Mutant(name, what, {"loss": staticmethod(wrong_loss)}, match=caught_by)
        for name, what, wrong_loss, caught_by in (
            ("diagonal_unmasked", "s_ii left in the softmax denominator", unmasked, "hand"),
            ("no_temperature", "the temperature ignored (tau = 1)", no_temperature, "hand"),
            ("one_direction", "only the first view's rows are anchors", one_direction, "symmetric"),
            ("positives_shifted", "row i's positive is image i - 1's second view", positives_shifted, "symmetric"),
            (
                "no_positive_term",
                "only the denominator (log-sum-exp over the other views): no pull between pairs",
                no_positive_term,
                "positives",
            ),
        )
    )

    def check(self, ctx):
        cfg, g = ctx.configs[0], ctx.generator()
        a, b = torch.randn(2, 8, 16, generator=g, dtype=torch.float64)  # (N, D) projections of views 1 and 2
        self._each_tau(ctx, "symmetric in the two views", a, b, lambda a, b, tau: self.loss(b, a, tau))
        close = a + 0.1 * torch.randn(a.shape, generator=g, dtype=torch.float64)  # views that agree
        # close.roll(3, 0): every row paired with another image's view (a derangement of the 8)
        aligned, shuffled = float(self.loss(a, close, 0.5)), float(self.loss(a, close.roll(3, 0), 0.5))
        ctx.expect(
            shuffled > aligned + 1.0,
            f"pairing rows with other images' views gives loss {shuffled:.3f}, "
            f"not above the aligned {aligned:.3f}: the positives are not the pairs i <-> i + N",
            name="permuting the second view raises the loss",
        )
        z1, z2 = [[1.0, 0.0], [0.6, 0.8]], [[0.8, 0.6], [-0.6, 0.8]]
        got = self.loss(torch.tensor(z1, dtype=torch.float64), torch.tensor(z2, dtype=torch.float64), 0.5)
        want = torch.tensor(nt_xent_by_hand(z1, z2, 0.5), dtype=torch.float64)
        ctx.assert_close(got, want, name="NT-Xent = hand computation", where="2 images, 2-d, tau 0.5")
        self._each_tau(ctx, "NT-Xent = pytorch-metric-learning NTXentLoss", a, b, nt_xent_pml, rtol=1e-6, atol=1e-9)
        rand_acc, acc, _ = self._train_and_probe(ctx, cfg)
        gain = 100 * (acc - rand_acc)
        ctx.expect(
            gain >= cfg.min_gain_pts,
            f"linear probe: trained {acc:.4f}, random-init {rand_acc:.4f}: gain {gain:.2f} < {cfg.min_gain_pts} points",
            name="the trained encoder beats a random one (linear probe)",
        )

    def _each_tau(self, ctx, name, a, b, other, **tol):
        for tau in (0.1, 0.5, 1.0):
            ctx.assert_close(self.loss(a, b, tau), other(a, b, tau), name=name, where=f"tau {tau}", **tol)

    def _nets(self, ctx, cfg, loss):
        """(encoder, encoder + projection head, the loss of two views (B, 64) through both), seeded."""
        torch.manual_seed(ctx.rng_seed)
        enc = MLP(MLPConfig(in_features=64, hidden=(128,), out_features=cfg.rep_dim))
        net = nn.Sequential(enc, mlp_head(cfg.rep_dim, cfg.proj_dim)).to(ctx.device)
        return enc, net, lambda v1, v2: loss(net(v1), net(v2), cfg.temperature)

    def _train_and_probe(self, ctx, cfg):
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0))
        enc, net, loss_fn = self._nets(ctx, cfg, self.loss)
        rand_acc = linear_probe(enc, xtr, ytr, xte, yte)
        curve = train_two_views(
            loss_fn, net.parameters(), xtr, steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, seed=ctx.rng_seed
        )
        return rand_acc, linear_probe(enc, xtr, ytr, xte, yte), curve

    def bench(self, ctx):
        rand_acc, acc, (steps, losses) = self._train_and_probe(ctx, ctx.configs[0])
        ctx.curve("NT-Xent loss", steps, losses, y_label="loss (batch)")
        ctx.metric("probe_acc_random", rand_acc)
        ctx.metric("probe_acc_trained", acc)
        ctx.metric("probe_gain_pts", 100 * (acc - rand_acc))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        xb = digits_split(seed=0)[0][: config.batch].to(ctx.device)  # (batch, 64): the same images every step
        _, net, loss_fn = self._nets(ctx, config, nt_xent if impl == "nt_xent_masked_matrix" else nt_xent_pml)
        opt, g = torch.optim.Adam(net.parameters(), lr=config.lr), ctx.generator()
        return Prepared(fn=lambda: two_view_step(loss_fn, opt, xb, g), items=config.batch, item_unit="images")
