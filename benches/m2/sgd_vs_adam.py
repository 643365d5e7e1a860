"""m2 Convergence curves of SGD vs Adam.

Compared: plain SGD, SGD with momentum 0.9 and Adam (betas 0.9, 0.999), the hand-written foreach
optimizers of ``kernels/optim/optimizers.py``, training one MLP (``models/mlp.py``) on sklearn's
8x8 digits (1,437 train / 360 held out, stratified) from the same initial weights, batch stream
and budget (checked by ``harness.trained``); every run must learn and the three loss curves must
differ. Bench adds a learning-rate sweep and one optimizer step's time per variant.

Lesson: at tuned default rates (SGD 0.3, momentum 0.03, Adam 3e-3) all three reach high
held-out accuracy on this budget, but Adam gets there first and the learning-rate sweep
(x0.3, x1, x3) shows why it is the default to reach for: its per-parameter step size
(m / sqrt(v), Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") makes it
less sensitive to the global rate, while the SGD variants want theirs tuned; a tuned SGD
with momentum does as well in the end (Wilson et al. 2017, "The Marginal Value of Adaptive
Gradient Methods in Machine Learning", find it generalises at least as well). Per step the
difference is small: Adam's two moment buffers cost a few extra passes over the parameters.
"""

from __future__ import annotations

import dataclasses

import torch

import kernels.optim.optimizers as own_optim
from harness import Comparison, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.trained import Recipe, expect_learns, run_variants, train_recipe, variant
from models.mlp import MLP, MLPConfig

#: variant -> (optimizer class name, fixed arguments); the learning rate comes from the config
OPTIMIZERS = {"sgd": ("SGD", {}), "sgd_momentum": ("SGD", {"momentum": 0.9}), "adam": ("Adam", {})}


@dataclasses.dataclass(frozen=True)
class CurveConfig:
    """Budget and learning rates of the comparison."""

    steps: int
    """optimizer steps of every run (the shared budget)"""
    batch: int = 64
    """samples per step"""
    hidden: tuple[int, ...] = (64,)
    """MLP hidden widths"""
    lrs: tuple[tuple[str, float], ...] = (("sgd", 0.3), ("sgd_momentum", 0.03), ("adam", 3e-3))
    """learning rate of each variant for the curves"""
    sweep: tuple[float, ...] = ()
    """multipliers of each variant's rate for the learning-rate sweep (bench only)"""
    eval_every: int = 25
    """steps between test-accuracy evaluations"""

    def lr(self, variant: str) -> float:
        return dict(self.lrs)[variant]

    def label(self) -> str:
        return f"steps={self.steps},B={self.batch},hidden={'x'.join(map(str, self.hidden))}"


# -- unfair comparisons (the mutants) ------------------------------------------------------------
def _reseeded(self, ctx, config):
    """WRONG: seeds Adam's model differently: the curves compare initialisations too."""
    torch.manual_seed(ctx.rng_seed + 2)
    return SgdVsAdam.adam(self, ctx, config)


def _reorder(self, ctx, name, recipe, opt, data, budget):
    """WRONG: each variant draws its own batch stream."""
    (x, y), held_out = data
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(len(name))).to(y.device)
    return train_recipe(ctx, name, recipe, opt, ((x[perm], y[perm]), held_out), budget)


def _sgd_for_all(self, variant, params, lr):
    """WRONG: every variant is secretly plain SGD at lr 0.3: the curves coincide."""
    return SgdVsAdam.optimizer(self, "sgd", params, 0.3)


@task("m2.sgd_vs_adam", seed="m2", title="convergence curves of SGD vs Adam")
class SgdVsAdam(Comparison):
    __doc__ = __doc__
    sizes = {
        "tiny": CurveConfig(steps=60, hidden=(32,)),
        "cpu": CurveConfig(steps=400, hidden=(128, 64), sweep=(0.3, 1.0, 3.0)),
        "gpu": CurveConfig(steps=2000, hidden=(512, 256), sweep=(0.3, 1.0, 3.0)),
    }
    metrics = {
        "early_accuracy_gain": "Adam's minus plain SGD's test accuracy at the first evaluation (step 25), fraction",
        "adam.final_accuracy": "Adam's held-out accuracy at the end of the budget, fraction",
        "adam.worst_sweep_accuracy": "Adam's lowest final accuracy over the learning-rate sweep, fraction",
    }
    claims = (
        metric("early_accuracy_gain", ">=", 0.10, text="after 25 steps Adam's test accuracy >= SGD's + 10 points"),
        metric("adam.final_accuracy", ">=", 0.97, text="Adam reaches >= 97% held-out accuracy on the 8x8 digits"),
        metric("adam.worst_sweep_accuracy", ">=", 0.95, text="Adam's worst rate of the x0.3/x1/x3 sweep still >= 95%"),
        time_ratio("adam", to="sgd", at_most=2.0, text="an Adam step costs <= 2x a plain SGD step"),
    )
    mutants = (
        Mutant("seed_per_variant", "each variant's model seeded differently", {"adam": _reseeded}, "initial weights"),
        Mutant("batches_per_variant", "each variant draws its own batches", {"train_variant": _reorder}, "data stream"),
        Mutant("same_optimizer", "every variant is SGD at one rate", {"optimizer": _sgd_for_all}, "same loss curve"),
    )

    def train_data(self, ctx, config):
        xtr, ytr, xte, yte = digits_split(0.2, seed=0, dtype=ctx.dtype)  # (N, 64), 1,437 / 360
        return (xtr, ytr), (xte, yte)

    def optimizer(self, variant: str, params, lr: float) -> torch.optim.Optimizer:
        name, kwargs = OPTIMIZERS[variant]
        return getattr(own_optim, name)(params, lr=lr, foreach=True, **kwargs)

    def _mlp(self, variant: str, config: CurveConfig) -> Recipe:
        model = MLP(MLPConfig(in_features=64, hidden=config.hidden, out_features=10))
        return Recipe(model, lambda params: self.optimizer(variant, params, config.lr(variant)))

    @variant
    def sgd(self, ctx, config):
        return self._mlp("sgd", config)

    @variant
    def sgd_momentum(self, ctx, config):
        return self._mlp("sgd_momentum", config)

    @variant
    def adam(self, ctx, config):
        return self._mlp("adam", config)

    def properties(self, ctx, runs) -> None:
        for run in runs.values():
            expect_learns(ctx, run, ratio=0.7, window=10)
        curves = [tuple(r.log.losses) for r in runs.values()]
        msg = "two variants produced the same loss curve: is the optimizer actually switched?"
        ctx.expect(len(set(curves)) == len(curves), msg, name="the optimizers differ")

    def summarize(self, ctx, runs) -> None:
        ctx.metric("early_accuracy_gain", runs["adam"].log.eval_accuracy[0] - runs["sgd"].log.eval_accuracy[0])

    def bench(self, ctx) -> None:
        super().bench(ctx)  # curves, comparison table, one step timed per variant
        cfg, rows = ctx.configs[0], []
        for mult in cfg.sweep:  # the learning-rate sweep: every rate scaled by mult
            scaled = dataclasses.replace(cfg, lrs=tuple((v, lr * mult) for v, lr in cfg.lrs))
            for v, run in run_variants(self, ctx, scaled).items():
                loss10 = float(f"{sum(run.log.losses[-10:]) / 10:.4g}")  # mean of the last 10 steps
                row = {"variant": v, "lr": float(f"{scaled.lr(v):.3g}"), "steps": cfg.steps}
                rows.append({**row, "final_loss_mean10": loss10, "final_accuracy": run.log.final_accuracy})
        if rows:
            ctx.table("lr sweep", rows)
            ctx.metric("adam.worst_sweep_accuracy", min(r["final_accuracy"] for r in rows if r["variant"] == "adam"))
