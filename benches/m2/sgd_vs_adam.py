"""m2 Convergence curves of SGD vs Adam.

One problem, one seed, one budget: an MLP (``models/mlp.py``) classifying scikit-learn's
8x8 digits (real data, 1,797 images: 1,437 to train, 360 held out, stratified), trained
with the hand-written optimizers of ``kernels/optim/optimizers.py`` (foreach versions):

* ``sgd``: plain SGD;
* ``sgd_momentum``: SGD with momentum 0.9;
* ``adam``: Adam (betas 0.9, 0.999).

Each variant starts from the same initial weights (``torch.manual_seed(seed)`` before the
model is built) and sees the same mini-batches in the same order (one index stream from a
generator seeded once), for the same number of steps; only the optimizer differs.

Check (tiny): the three runs start from bit-identical parameters, draw identical batch
sequences and take the same number of steps; every run's loss falls (mean of the last 10
steps below 70% of the first 10); the runs' curves are not identical (the optimizers do
differ); the curves go into the run record.

Bench: the training-loss and test-accuracy curves of each variant (one chart per
quantity, one line per variant), a learning-rate sweep (3 rates per optimizer, final
loss and accuracy in the ``lr sweep`` table) and one optimizer step's time per variant.

Lesson: at tuned default rates (SGD 0.3, momentum 0.03, Adam 3e-3) all three reach high
held-out accuracy on this budget, but Adam gets there first and the learning-rate sweep
(x0.3, x1, x3) shows why it is the default to reach for: its per-parameter step size
(m / sqrt(v), Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") makes it
less sensitive to the global rate, while the SGD variants want theirs tuned; a tuned SGD
with momentum does as well in the end (Wilson et al. 2017, "The Marginal Value of Adaptive
Gradient Methods in Machine Learning", find it generalises at least as well). Per step the
difference is small: Adam's two moment buffers cost a few extra passes over the parameters.
The curves are deterministic (seeded); the claims read their metrics.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

import kernels.optim.optimizers as own_optim
from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import evaluate
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


@dataclasses.dataclass
class Run:
    """What one variant's run produced."""

    init: torch.Tensor  # all initial parameters, flattened
    batches: list[torch.Tensor]  # the index tensor of every step
    losses: list[float]
    eval_steps: list[int]
    accuracy: list[float]


# -- unfair comparisons (the mutants) ------------------------------------------------------------
def _seed_per_variant(self, variant, config, device, dtype, seed):
    """WRONG: seeds each variant's model differently: the curves compare initialisations too."""
    return SgdVsAdam.model(self, variant, config, device, dtype, seed + SgdVsAdam.variants.index(variant))


def _batches_per_variant(self, variant, config, n, seed):
    """WRONG: each variant draws its own batch stream."""
    return SgdVsAdam.batch_indices(self, variant, config, n, seed + SgdVsAdam.variants.index(variant))


def _sgd_for_all(self, variant, params, lr):
    """WRONG: every variant is secretly plain SGD at lr 0.3: the curves coincide."""
    return SgdVsAdam.optimizer(self, "sgd", params, 0.3)


@task("m2.sgd_vs_adam", seed="m2", title="convergence curves of SGD vs Adam")
class SgdVsAdam(Comparison):
    __doc__ = __doc__
    variants = tuple(OPTIMIZERS)
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
        Mutant(
            "seed_per_variant",
            "each variant's model seeded differently",
            {"model": _seed_per_variant},
            match="initial parameters",
        ),
        Mutant(
            "batches_per_variant",
            "each variant draws its own batches",
            {"batch_indices": _batches_per_variant},
            match="not the same sequence",
        ),
        Mutant(
            "same_optimizer",
            "every variant is SGD at one rate",
            {"optimizer": _sgd_for_all},
            match="same loss curve",
        ),
    )

    def model(self, variant: str, config: CurveConfig, device, dtype, seed: int) -> MLP:
        """The network a variant trains (same for all: seeded before construction)."""
        torch.manual_seed(seed)
        return MLP(MLPConfig(in_features=64, hidden=config.hidden, out_features=10)).to(device, dtype)

    def optimizer(self, variant: str, params, lr: float) -> torch.optim.Optimizer:
        name, kwargs = OPTIMIZERS[variant]
        return getattr(own_optim, name)(params, lr=lr, foreach=True, **kwargs)

    def batch_indices(self, variant: str, config: CurveConfig, n: int, seed: int) -> list[torch.Tensor]:
        """Every step's batch indices: one stream, seeded once, the same for every variant."""
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(0, n, (config.batch,), generator=g) for _ in range(config.steps)]

    def run(self, variant: str, config: CurveConfig, device, dtype, seed: int, lr: float | None = None) -> Run:
        xtr, ytr, xte, yte = (t.to(device) for t in digits_split(0.2, seed=0, dtype=dtype))
        model = self.model(variant, config, device, dtype, seed)
        opt = self.optimizer(variant, model.parameters(), config.lr(variant) if lr is None else lr)
        init = torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])
        batches = self.batch_indices(variant, config, len(ytr), seed)
        losses, eval_steps, acc = [], [], []
        for step, idx in enumerate(batches, 1):
            idx = idx.to(device)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            if step % config.eval_every == 0 or step == len(batches):
                eval_steps.append(step)
                acc.append(evaluate(model, xte, yte)[0])
        return Run(init, batches, torch.stack(losses).float().cpu().tolist(), eval_steps, acc)

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        runs = {v: self.run(v, cfg, ctx.device, ctx.dtype, ctx.rng_seed) for v in self.variants}
        base = runs[self.variants[0]]
        for v, r in runs.items():
            b0 = self.variants[0]
            msg = f"{v}: initial parameters differ from {b0}'s: not the same seed"
            ctx.expect(torch.equal(r.init, base.init), msg, name="same initial parameters")
            same = len(r.batches) == len(base.batches) and all(map(torch.equal, r.batches, base.batches))
            msg = f"{v}: {len(r.batches)} batches, not the same sequence as {b0}'s {len(base.batches)}"
            ctx.expect(same, msg, name="same batches in the same order")
            msg = f"{v}: {len(r.losses)} steps, budget {cfg.steps}"
            ctx.expect(len(r.losses) == cfg.steps, msg, name="same budget")
            first, last = sum(r.losses[:10]) / 10, sum(r.losses[-10:]) / 10
            msg = f"{v}: loss {first:.3f} -> {last:.3f} over {cfg.steps} steps does not fall"
            ctx.expect(last < 0.7 * first, msg, name="every run learns")
            self.record(ctx, v, r)
        ctx.metric("early_accuracy_gain", runs["adam"].accuracy[0] - runs["sgd"].accuracy[0])
        curves = [tuple(r.losses) for r in runs.values()]
        msg = "two variants produced the same loss curve: is the optimizer actually switched?"
        ctx.expect(len(set(curves)) == len(curves), msg, name="the optimizers differ")

    def record(self, ctx, variant: str, r: Run) -> None:
        ctx.curve("train loss", list(range(1, len(r.losses) + 1)), r.losses, y_label="cross-entropy", series=variant)
        ctx.curve("test accuracy", r.eval_steps, r.accuracy, y_label="accuracy", series=variant)
        ctx.metric(f"{variant}.final_loss_mean10", sum(r.losses[-10:]) / 10)
        ctx.metric(f"{variant}.final_accuracy", r.accuracy[-1])

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: CurveConfig) -> Prepared:
        xtr, ytr, _, _ = digits_split(0.2, seed=0, dtype=ctx.dtype)
        xb, yb = xtr[: config.batch].to(ctx.device), ytr[: config.batch].to(ctx.device)
        model = self.model(impl, config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = self.optimizer(impl, model.parameters(), config.lr(impl))

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

        step()
        return Prepared(fn=step, items=config.batch, item_unit="samples")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        rows, first_acc = [], {}
        for v in self.variants:
            r = self.run(v, cfg, ctx.device, ctx.dtype, ctx.rng_seed)
            self.record(ctx, v, r)
            first_acc[v] = r.accuracy[0]
            for mult in cfg.sweep:
                lr = cfg.lr(v) * mult
                r = self.run(v, cfg, ctx.device, ctx.dtype, ctx.rng_seed, lr=lr)
                row = {"variant": v, "lr": float(f"{lr:.3g}"), "steps": cfg.steps}
                loss10 = sum(r.losses[-10:]) / 10
                rows.append({**row, "final_loss_mean10": float(f"{loss10:.4g}"), "final_accuracy": r.accuracy[-1]})
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
        ctx.metric("early_accuracy_gain", first_acc["adam"] - first_acc["sgd"])
        if rows:
            ctx.table("lr sweep", rows)
            ctx.metric("adam.worst_sweep_accuracy", min(r["final_accuracy"] for r in rows if r["variant"] == "adam"))
