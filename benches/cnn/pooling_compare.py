"""4.08 With vs without pooling.

Compared: the same two-stage CNN (conv 3x3 -> BN -> ReLU -> downsample, then a flatten +
Linear head; ``models/convnets.py`` SmallCNN) with four ways to handle resolution, trained
on the same seed, data and budget:

* ``maxpool``: 2x2 max pooling after each conv (H and W halve per stage);
* ``avgpool``: 2x2 average pooling instead;
* ``strided``: no pooling layer, the conv itself has stride 2 (H and W halve; the
  all-convolutional net of Springenberg et al., ICLR 2015 workshop);
* ``no_pool``: no downsampling at all: the head sees every position of the last stage.

Data: scikit-learn's digits (1,797 real 8x8 handwritten digits, 25% held out, stratified).

Checked: every stage's output shape equals the designed one (a table written in this file,
not derived from the model: (8,4,4) then (16,2,2) with downsampling, (8,8,8) then (16,8,8)
without) and the config's own shape arithmetic agrees; logits are (N, 10); every variant
trains to >= 85% test accuracy in the tiny budget; accuracy, parameters and time per step
of each go into a table and curves (one series per variant).

Lesson: pooling is mostly about the head and the cost: without downsampling the flatten
head sees 16x more features (C*8*8 vs C*2*2) and holds most of the parameters, and the
second conv runs at 4x the positions, so a step costs more; accuracy barely moves on 8x8
digits, where translation invariance matters little. Strided convolution matches pooling
at a lower cost per step (the conv computes only the positions it keeps; Springenberg et
al., "Striving for Simplicity: The All Convolutional Net", 2015, sec. 2). The claims state
each part.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import fit, standard_step
from models.convnets import SmallCNN, SmallCNNConfig, count_params

POOL_OF = {"maxpool": "max", "avgpool": "avg", "strided": "stride", "no_pool": "none"}
#: stage output shapes (C, H, W) designed for an 8x8 digit and channels (8, 16)
DESIGNED_8PX = {
    "maxpool": [(8, 4, 4), (16, 2, 2)],
    "avgpool": [(8, 4, 4), (16, 2, 2)],
    "strided": [(8, 4, 4), (16, 2, 2)],
    "no_pool": [(8, 8, 8), (16, 8, 8)],
}


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """Network widths and training budget shared by every variant."""

    channels: tuple[int, ...] = (8, 16)
    """output channels of the two conv stages"""
    epochs: int = 4
    """passes over the 1,347 training digits"""
    batch_size: int = 64
    """images per optimizer step"""
    lr: float = 3e-3
    """Adam learning rate"""
    min_accuracy: float = 0.85
    """test accuracy every variant must reach in the check, in [0, 1]"""

    def label(self) -> str:
        return f"channels={self.channels},epochs={self.epochs},batch={self.batch_size}"


def digits(device, dtype):
    """(train, test, description): images (N, 1, 8, 8) in [0, 1], labels (N,)."""
    x, y, xt, yt = digits_split(0.25, seed=0, dtype=dtype)  # (N, 64)
    img = lambda v: v.reshape(-1, 1, 8, 8).to(device)  # noqa: E731 (named for reading)
    return (img(x), y.to(device)), (img(xt), yt.to(device)), "scikit-learn digits (1,797 real 8x8), 25 % held out"


# -- wrong versions (mutants) ------------------------------------------------------------


def _drops_pooling(self, ctx, config, variant):
    net = PoolingCompare.model(self, ctx, config, variant)
    if variant == "avgpool":
        net.features[1][-1] = nn.Identity()  # the second stage forgets its pooling
    return net


class WrongArithmetic(SmallCNNConfig):
    def stage_shapes(self):  # one row short per stage
        return [(c, h - 1, w) for c, h, w in super().stage_shapes()]


@task("cnn.pooling_compare", seed="4.08", title="with vs without pooling")
class PoolingCompare(Comparison):
    __doc__ = __doc__
    variants = ("maxpool", "avgpool", "strided", "no_pool")
    sizes = {
        "tiny": PoolConfig(),
        "cpu": PoolConfig(channels=(32, 64), epochs=6),
        "gpu": PoolConfig(channels=(32, 64), epochs=20),
    }
    #: the network config class (its shape arithmetic is checked against the model)
    config_cls = SmallCNNConfig
    metrics = {"accuracy_spread": "highest minus lowest final test accuracy of the four variants, in [0, 1]"}
    claims = (
        metric("accuracy_spread", "<=", 0.03, text="on 8x8 digits all four reach test accuracies within 3 points"),
        speedup("strided", over="maxpool", at_least=1.3, text="a strided conv step >= 1.3x a conv + max-pool step"),
        speedup("maxpool", over="no_pool", at_least=1.5, text="pooling makes a step >= 1.5x cheaper than none"),
    )
    mutants = (
        Mutant("missing_pooling_layer", "stage 2 lost its pooling", {"model": _drops_pooling}, match="avgpool"),
        Mutant(
            "wrong_shape_arithmetic",
            "shapes off by one",
            {"config_cls": WrongArithmetic},
            match="arithmetic",
        ),
        Mutant("does_not_learn", "lr 0", {"sizes": {"tiny": PoolConfig(lr=0.0, epochs=1)}}, match="test accuracy"),
    )

    def model(self, ctx, config, variant):
        torch.manual_seed(ctx.rng_seed)
        cfg = self.config_cls(channels=config.channels, pool=POOL_OF[variant], batch_norm=True)
        return SmallCNN(cfg).to(ctx.device, ctx.dtype)

    def check(self, ctx):
        config = ctx.configs[0]
        x = torch.rand(5, 1, 8, 8, generator=ctx.generator()).to(ctx.device, ctx.dtype)
        for variant in self.variants:
            net = self.model(ctx, config, variant)
            shapes = []
            hooks = [
                stage.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
                for stage in net.features
            ]
            feats = net.features(x)  # shapes first: a head sized for other shapes would only raise
            for h in hooks:
                h.remove()
            ctx.expect(
                shapes == net.config.stage_shapes(),
                f"{variant}: stage outputs {shapes}, the config's arithmetic says {net.config.stage_shapes()}",
                name=f"{variant}: shapes follow the config",
            )
            if config.channels == (8, 16):
                ctx.expect(
                    shapes == DESIGNED_8PX[variant],
                    f"{variant}: stage outputs {shapes}, designed {DESIGNED_8PX[variant]}",
                    name=f"{variant}: shapes as designed",
                )
            logits = net.head(feats)
            ctx.expect(
                tuple(logits.shape) == (5, 10),
                f"{variant}: logits {tuple(logits.shape)} != (5, 10)",
                name=f"{variant}: logits shape",
            )
        rows = self.train_variants(ctx, config)
        for row in rows:
            ctx.expect(
                row["test_accuracy"] >= config.min_accuracy,
                f"{row['variant']}: test accuracy {row['test_accuracy']:.3f} < {config.min_accuracy}",
                name=f"{row['variant']} trains",
            )

    def train_variants(self, ctx, config):
        train, test, desc = digits(ctx.device, ctx.dtype)
        ctx.note(f"data: {desc}")
        rows = []
        for variant in self.variants:
            net = self.model(ctx, config, variant)
            opt = torch.optim.Adam(net.parameters(), lr=config.lr)
            kw = {"batch_size": config.batch_size, "epochs": config.epochs, "seed": ctx.rng_seed}
            log = fit(net, opt, train, eval_data=test, **kw)
            log.record(ctx, series=variant, prefix=f"{variant}.")
            rows.append(
                {
                    "variant": variant,
                    "params": count_params(net),
                    "feature_shape": "x".join(map(str, net.config.feature_shape())),
                    "test_accuracy": round(log.final_accuracy, 4),
                    "ms_per_step": round(1e3 * log.train_time_s / len(log.steps), 3),
                }
            )
            ctx.metric(f"{variant}.params", rows[-1]["params"])
        ctx.table(f"accuracy, parameters and time per step after {config.epochs} epochs", rows)
        accs = [r["test_accuracy"] for r in rows]
        ctx.metric("accuracy_spread", max(accs) - min(accs))
        return rows

    def prepare(self, ctx, impl, config):
        net = self.model(ctx, config, impl)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        g = ctx.generator(3)
        x = torch.rand(config.batch_size, 1, 8, 8, generator=g).to(ctx.device, ctx.dtype)
        y = torch.randint(0, 10, (config.batch_size,), generator=g).to(ctx.device)
        return Prepared(fn=lambda: standard_step(net, opt, x, y), items=config.batch_size, item_unit="images")

    def bench(self, ctx):
        config = ctx.configs[0]
        for variant in self.variants:
            ctx.measure(variant, self.prepare(ctx, variant, config), config=config)
        self.train_variants(ctx, config)
