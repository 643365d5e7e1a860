"""4.08 With vs without pooling.

Compared: the same two-stage CNN (``models/convnets.py`` SmallCNN: conv 3x3 -> BN -> ReLU
-> downsample, then a flatten + Linear head) on scikit-learn's real 8x8 digits (25% held
out, stratified), same seed, data and budget, with four ways to handle resolution:
``maxpool`` / ``avgpool`` (2x2 pooling after each conv), ``strided`` (the conv itself has
stride 2, no pooling layer) and ``no_pool`` (no downsampling). The check compares every
stage's output shape with a table written here and with the config's own arithmetic.

Lesson: pooling is mostly about the head and the cost: without downsampling the flatten
head sees 16x more features (C*8*8 vs C*2*2) and holds most of the parameters, and the
second conv runs at 4x the positions, so a step costs more; accuracy barely moves on 8x8
digits, where translation invariance matters little. Strided convolution matches pooling
at a lower cost per step (the conv computes only the positions it keeps; Springenberg et
al., "Striving for Simplicity: The All Convolutional Net", ICLR 2015 workshop, sec. 2).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Comparison, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.trained import Recipe, variant
from models.convnets import SmallCNN, SmallCNNConfig, count_params

#: stage output shapes (C, H, W) designed for an 8x8 digit and channels (8, 16)
DESIGNED_8PX = {"maxpool": [(8, 4, 4), (16, 2, 2)], "no_pool": [(8, 8, 8), (16, 8, 8)]}
DESIGNED_8PX["avgpool"] = DESIGNED_8PX["strided"] = DESIGNED_8PX["maxpool"]


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


# -- wrong versions (mutants) ------------------------------------------------------------


def _drops_pooling(self, ctx, config):
    recipe = PoolingCompare.avgpool(self, ctx, config)
    recipe.model.features[1][-1] = nn.Identity()  # the second stage forgets its pooling
    return recipe


class WrongArithmetic(SmallCNNConfig):
    def stage_shapes(self):  # one row short per stage
        return [(c, h - 1, w) for c, h, w in super().stage_shapes()]


@task("cnn.pooling_compare", seed="4.08", title="with vs without pooling")
class PoolingCompare(Comparison):
    __doc__ = __doc__
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
        Mutant("missing_pooling_layer", "stage 2 lost its pooling", {"avgpool": _drops_pooling}, match="avgpool"),
        Mutant("wrong_shape_arithmetic", "shapes off by one", {"config_cls": WrongArithmetic}, match="arithmetic"),
        Mutant("does_not_learn", "lr 0", {"sizes": {"tiny": PoolConfig(lr=0.0, epochs=1)}}, match="test accuracy"),
    )

    def train_data(self, ctx, config):
        """scikit-learn digits (1,797 real 8x8), 25 % held out: images (N, 1, 8, 8) in [0, 1]."""
        x, y, xt, yt = digits_split(0.25, seed=0, dtype=ctx.dtype)  # (N, 64)
        return (x.reshape(-1, 1, 8, 8), y), (xt.reshape(-1, 1, 8, 8), yt)

    def _cnn(self, config: PoolConfig, pool: str) -> Recipe:
        net = SmallCNN(self.config_cls(channels=config.channels, pool=pool, batch_norm=True))
        return Recipe(net, lambda params: torch.optim.Adam(params, lr=config.lr))

    @variant
    def maxpool(self, ctx, config):
        return self._cnn(config, "max")

    @variant
    def avgpool(self, ctx, config):
        return self._cnn(config, "avg")

    @variant
    def strided(self, ctx, config):
        return self._cnn(config, "stride")

    @variant
    def no_pool(self, ctx, config):
        return self._cnn(config, "none")

    def check(self, ctx):
        # the shapes first: a head sized for other shapes would only raise in training
        config = ctx.configs[0]
        x = torch.rand(5, 1, 8, 8, generator=ctx.generator()).to(ctx.device, ctx.dtype)
        for v in self.variants:
            net = getattr(self, v)(ctx, config).model.to(ctx.device, ctx.dtype)
            feats, shapes = x, []
            for stage in net.features:
                feats = stage(feats)
                shapes.append(tuple(feats.shape[1:]))  # (C, H, W) after each stage
            wants = {"shapes follow the config": ("the config's arithmetic says", net.config.stage_shapes())}
            if config.channels == (8, 16):  # the widths the table was designed for
                wants["shapes as designed"] = ("designed", DESIGNED_8PX[v])
            for what, (says, want) in wants.items():
                ctx.expect(shapes == want, f"{v}: stage outputs {shapes}, {says} {want}", name=f"{v}: {what}")
            logits = net.head(feats)
            why = f"{v}: logits {tuple(logits.shape)} != (5, 10)"
            ctx.expect(tuple(logits.shape) == (5, 10), why, name=f"{v}: logits shape")
        super().check(ctx)

    def properties(self, ctx, runs):
        for run in runs.values():
            acc, floor = run.log.final_accuracy, ctx.configs[0].min_accuracy
            ctx.expect(acc >= floor, f"{run.name}: test accuracy {acc:.3f} < {floor}", name=f"{run.name} trains")

    def row(self, run):
        shape = "x".join(map(str, run.model.config.feature_shape()))
        return {"params": count_params(run.model), "feature_shape": shape}

    def summarize(self, ctx, runs):
        for run in runs.values():
            ctx.metric(f"{run.name}.params", count_params(run.model))
        accs = [r.log.final_accuracy for r in runs.values()]
        ctx.metric("accuracy_spread", max(accs) - min(accs))
