"""m6 A variance tracker across runs.

Compared: one short training run of a digits MLP repeated over N seeds (each seed sets the
initial weights and the batch order; data and split stay fixed), summarised by hand
(``kernels.stats.intervals``: mean, sample standard deviation, a Student-t and a percentile
bootstrap 95 % interval) against SciPy (``scipy.stats.t.interval``, ``scipy.stats.bootstrap``):
equal to 1e-12 on a worked example and on random samples, the bootstrap within Monte Carlo
error (each draws 9,999 resamples with its own generator). The bench records the study
(accuracy per seed as curves, the summary as metrics and a table) and times the vectorised
bootstrap (one (B, N) gather) against SciPy's.

Lesson: a single run is one draw from a distribution. Picard (2021, "torch.manual_seed(3407)
is all you need", arXiv:2109.08203) trained a CIFAR-10 ResNet with 10,000 seeds: accuracy
ranged over 1.82 points with a standard deviation of about 0.26, so two papers' 0.5-point
difference can be the seed. Report the mean and an interval over several seeds, and use the
t quantile, not 1.96: with 5 seeds it is 2.776, so a normal interval is 30 % too narrow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import stats as sps

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import fit
from kernels.stats import intervals as own
from kernels.stats.wrong import normal_interval, permutation_bootstrap, population_std
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class SeedStudy:
    """How many seeds, and how long each digits run is."""

    seeds: int
    """N: runs summarised"""
    steps: int
    """Adam steps per run (batch 64)"""
    resamples: int = 9999
    """bootstrap resamples B"""


@task("m6.variance_tracker", seed="m6", title="a variance tracker across runs")
class VarianceTracker(Comparison):
    __doc__ = __doc__
    variants = ("own_bootstrap", "scipy_bootstrap")
    sizes = {"tiny": SeedStudy(seeds=4, steps=40), "cpu": SeedStudy(seeds=10, steps=150)}
    metrics = {
        "ci95_halfwidth_pts": "half-width of the t 95 % interval of held-out accuracy, points",
        "spread_pts": "best minus worst seed's held-out accuracy, points",
    }
    claims = (
        metric("ci95_halfwidth_pts", "<=", 2.0, text="N seeds pin the mean accuracy to +-2 points (t 95 %)"),
        metric("spread_pts", ">=", 0.3, text="best and worst seed differ by >= 0.3 points: one run is not a result"),
        time_ratio(
            "own_bootstrap", to="scipy_bootstrap", at_most=2.0, text="vectorised bootstrap within 2x of SciPy's"
        ),
    )
    # the statistics the check exercises, as class attributes so that mutants can swap them
    mean_std = staticmethod(own.mean_std)
    t_interval = staticmethod(own.t_interval)
    bootstrap = staticmethod(own.bootstrap_interval)
    mutants = (
        Mutant(
            "population_std",
            "standard deviation with ddof = 0",
            {"mean_std": staticmethod(population_std)},
            match="std",
        ),
        Mutant(
            "normal_quantile",
            "1.96 where the t quantile belongs",
            {"t_interval": staticmethod(normal_interval)},
            match="t-interval",
        ),
        Mutant(
            "no_replacement",
            "bootstrap resamples drawn without replacement",
            {"bootstrap": staticmethod(permutation_bootstrap)},
            match="bootstrap",
        ),
    )

    def check(self, ctx):
        worked, g = torch.tensor([0.91, 0.93, 0.92, 0.95, 0.90], dtype=torch.float64), ctx.generator()
        samples = [worked] + [torch.randn(n, generator=g, dtype=torch.float64) * 0.01 + 0.9 for n in (5, 10, 10)]
        for i, x in enumerate(samples):
            self._check_summary(ctx, x, where=f"sample {i} (N={x.numel()})")
        accs = self._study(ctx, ctx.configs[0])
        ctx.expect(
            max(accs) > min(accs),
            f"all {len(accs)} seeds gave accuracy {accs[0]:.4f}: the seed changes "
            "nothing, so the study measures no spread",
            name="seeds differ",
        )

    def _check_summary(self, ctx, x, where):
        xn, f64 = x.numpy(), lambda v: torch.tensor(v, dtype=torch.float64)
        exact = {"where": where, "rtol": 1e-12, "atol": 0}
        ctx.assert_close(f64(self.mean_std(x)), f64([xn.mean(), xn.std(ddof=1)]), name="mean and std (ddof 1)", **exact)
        ref = sps.t.interval(0.95, len(xn) - 1, loc=xn.mean(), scale=xn.std(ddof=1) / np.sqrt(len(xn)))
        ctx.assert_close(f64(self.t_interval(x)), f64(ref), name="t-interval 95 %", **exact)
        ref = sps.bootstrap((xn,), np.mean, method="percentile", n_resamples=9999, random_state=ctx.rng_seed)
        ours = f64(self.bootstrap(x, 0.95, 9999, ctx.rng_seed))
        theirs = f64([ref.confidence_interval.low, ref.confidence_interval.high])
        # Monte Carlo error of a percentile with 9,999 resamples is ~1-2 % of the std; allow 8 %
        ctx.assert_close(
            ours, theirs, name="bootstrap interval (percentile)", where=where, rtol=0, atol=0.08 * float(xn.std(ddof=1))
        )

    def _study(self, ctx, cfg):
        """Held-out accuracy after ``cfg.steps`` Adam steps, one run per seed (weights and batch order)."""
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0, dtype=ctx.dtype))
        budget = {"batch_size": 64, "epochs": 100, "max_steps": cfg.steps, "eval_every": max(1, cfg.steps // 8)}
        accs = []
        for s in range(cfg.seeds):
            torch.manual_seed(ctx.rng_seed + s)
            model = MLP(MLPConfig(in_features=64, hidden=(64,))).to(ctx.device, ctx.dtype)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            log = fit(model, opt, (xtr, ytr), eval_data=(xte, yte), seed=ctx.rng_seed + s, **budget)
            ctx.curve(
                "held-out accuracy per seed", log.eval_steps, log.eval_accuracy, series=f"seed {s}", y_label="accuracy"
            )
            accs.append(log.eval_accuracy[-1])
        return accs

    def bench(self, ctx):
        cfg = ctx.configs[0]
        accs = torch.tensor(self._study(ctx, cfg), dtype=torch.float64)
        summ = own.summarize(accs, n_resamples=cfg.resamples, seed=ctx.rng_seed)
        ctx.metric("ci95_halfwidth_pts", 100 * (summ.t_high - summ.t_low) / 2)
        ctx.metric("spread_pts", 100 * float(accs.max() - accs.min()))
        row = {k: round(v, 5) if isinstance(v, float) else v for k, v in dataclasses.asdict(summ).items()}
        ctx.table("accuracy over seeds", [row])
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        x = torch.randn(config.seeds, generator=ctx.generator(), dtype=torch.float64) * 0.01 + 0.9
        if impl == "own_bootstrap":
            return Prepared(fn=lambda: own.bootstrap_interval(x, 0.95, config.resamples, 0))
        xn = x.numpy()
        return Prepared(
            fn=lambda: sps.bootstrap((xn,), np.mean, method="percentile", n_resamples=config.resamples, random_state=0)
        )
