"""3.04 With vs without batch normalization.

Compared: the same MLP on scikit-learn's real 8x8 digits (1,347 train / 450 test,
stratified), same seed, same Linear initialisation, same SGD budget, three ways: ``no_bn``
(the baseline), ``own_bn`` (``kernels.layers.batchnorm.BatchNorm1d`` after every hidden
Linear) and ``torch_bn`` (``nn.BatchNorm1d`` in the same places).

The check holds the hand-written BN to ``nn.BatchNorm1d``/``2d`` (outputs, gradients and
buffers over 3 training steps and in eval; momentum 0.1 and None, with and without affine
parameters or running statistics; ``running_var`` takes the *unbiased* batch variance while
normalising with the biased one), then every variant's loss must halve and ``own_bn``'s loss
curve must equal ``torch_bn``'s (rtol 1e-4: float32 rounding of two different but equal
formulas compounds over the steps; a wrong statistic or gradient is off by far more).

Lesson: four stacked sigmoids at this learning rate saturate and their gradients vanish, so
without BN the net stays near chance for the whole budget; normalising every pre-activation
keeps them in the sigmoid's steep range, which is the mechanism Ioffe & Szegedy give ("Batch
Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
ICML 2015, sec. 3.4: BN makes saturating nonlinearities trainable). BN adds per-layer passes
to a small, overhead-bound step, and the hand version more (a Python autograd.Function,
unfused: several extra passes and kernel calls per layer); the claims bound both costs.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Comparison, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_split
from harness.module_equivalence import assert_module_matches
from harness.mutants import Mutant
from harness.trained import Recipe, expect_learns, variant
from kernels.layers.batchnorm import BatchNorm1d, BatchNorm2d, replace_batchnorm
from kernels.layers.batchnorm_wrong import BatchStatsInEval1d, BiasedRunningVar1d, NoMomentumNone2d, WrongGrad1d
from models.mlp import MLP, MLPConfig

VARIANTS = ("no_bn", "own_bn", "torch_bn")
#: (module pair, input shape, constructor kwargs) of the equality check
EQUALITY_CASES = [
    ("1d", (16, 6), {"momentum": 0.1}),
    ("1d", (8, 6, 5), {"momentum": None}),
    ("2d", (4, 6, 5, 7), {"momentum": 0.1}),
    ("2d", (3, 6, 4, 4), {"momentum": None, "affine": False}),
    ("1d", (16, 6), {"track_running_stats": False}),
]


@dataclasses.dataclass(frozen=True)
class BNConfig:
    """One training budget shared by the three variants."""

    hidden: tuple[int, ...]
    """hidden widths of the MLP (input 64 pixels, output 10 classes)"""
    epochs: int
    """passes over the 1,347 training digits"""
    activation: str = "sigmoid"
    """hidden non-linearity (sigmoid saturates: where normalisation helps most)"""
    batch_size: int = 64
    """samples per SGD step (BN statistics come from this many samples)"""
    lr: float = 0.1
    """SGD learning rate (momentum 0.9)"""

    def label(self) -> str:
        widths = "-".join(map(str, self.hidden))
        return f"mlp=64-{widths}-10,{self.activation},bs={self.batch_size},epochs={self.epochs}"


@task("nn_basics.batchnorm_compare", seed="3.04", title="with vs without batch normalization")
class BatchNormCompare(Comparison):
    __doc__ = __doc__
    bn1d, bn2d = BatchNorm1d, BatchNorm2d  # the implementations under test
    sizes = {
        "tiny": BNConfig(hidden=(32, 32), epochs=4, activation="relu"),
        "cpu": BNConfig(hidden=(128,) * 4, epochs=15),
        "gpu": BNConfig(hidden=(1024,) * 4, epochs=15, batch_size=256),
    }
    metrics = {
        **{f"{v}.final_accuracy": f"{v}: test accuracy after the budget, in [0, 1]" for v in VARIANTS},
        "bn_accuracy_gain": "torch_bn's final test accuracy minus no_bn's, in [0, 1]",
    }
    claims = (
        metric("bn_accuracy_gain", ">=", 0.3, text="BN lifts the sigmoid MLP's test accuracy by >= 30 points"),
        time_ratio(
            "torch_bn", to="no_bn", at_most=2.0, text="a training step with nn.BatchNorm1d costs <= 2x one without"
        ),
        time_ratio("own_bn", to="torch_bn", at_most=4.0, text="the hand-written BN step within 4x of nn.BatchNorm1d's"),
    )
    mutants = tuple(
        Mutant(name, what, {attr: cls}, match=match)
        for name, what, attr, cls, match in (
            ("biased_running_var", "running_var takes the biased variance", "bn1d", BiasedRunningVar1d, "running_var"),
            ("momentum_none_as_constant", "momentum=None treated as 0.1", "bn2d", NoMomentumNone2d, "running_"),
            ("batch_stats_in_eval", "eval normalises by batch statistics", "bn1d", BatchStatsInEval1d, "output (eval)"),
            ("drops_xhat_grad_term", "grad input lacks mean(g * xhat)", "bn1d", WrongGrad1d, "grad input (train)"),
        )
    )

    def train_data(self, ctx, cfg):
        x, y, xt, yt = digits_split(0.25, seed=ctx.rng_seed, dtype=ctx.dtype)  # (N, 64) pixels / 16
        return (x, y), (xt, yt)

    def _mlp(self, cfg: BNConfig, bn: bool) -> Recipe:
        # BN layers draw nothing: every variant gets the same Linear weights
        m = MLP(MLPConfig(in_features=64, hidden=cfg.hidden, out_features=10, activation=cfg.activation, batch_norm=bn))
        return Recipe(m, lambda params: torch.optim.SGD(params, lr=cfg.lr, momentum=0.9))

    @variant
    def no_bn(self, ctx, cfg: BNConfig) -> Recipe:
        return self._mlp(cfg, bn=False)

    @variant
    def own_bn(self, ctx, cfg: BNConfig) -> Recipe:
        recipe = self._mlp(cfg, bn=True)
        replace_batchnorm(recipe.model, (self.bn1d, self.bn2d))  # the same places, the hand-written class
        return recipe

    @variant
    def torch_bn(self, ctx, cfg: BNConfig) -> Recipe:
        return self._mlp(cfg, bn=True)

    def check(self, ctx) -> None:
        for i, (kind, shape, kw) in enumerate(EQUALITY_CASES):
            ref_cls, own_cls = (nn.BatchNorm1d, self.bn1d) if kind == "1d" else (nn.BatchNorm2d, self.bn2d)
            ref, own = (m(shape[1], **kw).to(ctx.device, ctx.dtype) for m in (ref_cls, own_cls))
            names = {"running_var": "running_var (unbiased update)"}
            assert_module_matches(
                ctx, own, ref, shape, seed=ctx.rng_seed + i, where=f"BN{kind} {shape} {kw}", buffer_names=names
            )
        for bad, cls, shape in (
            ("rank", self.bn1d, (2, 4, 3, 3)),
            ("rank", self.bn2d, (2, 4, 3)),
            ("channels", self.bn1d, (2, 5)),
            ("one value per channel", self.bn1d, (1, 4)),
        ):
            x = torch.randn(shape, device=ctx.device, dtype=ctx.dtype)
            ctx.expect_raises(ValueError, lambda: cls(4).to(ctx.device, ctx.dtype)(x), name=f"rejects wrong {bad}")
        super().check(ctx)  # the three trained on one seed, data stream and budget

    def properties(self, ctx, runs) -> None:
        for v, run in runs.items():  # the last step's loss at most half the first's
            expect_learns(ctx, run, ratio=0.5, window=1, name=f"{v} trains")
        own, ref = (torch.tensor(runs[v].log.losses) for v in ("own_bn", "torch_bn"))
        ctx.assert_close(own, ref, name="own_bn loss curve = torch_bn loss curve", rtol=1e-4, atol=1e-5)

    def summarize(self, ctx, runs) -> None:
        ctx.metric("bn_accuracy_gain", runs["torch_bn"].log.final_accuracy - runs["no_bn"].log.final_accuracy)
