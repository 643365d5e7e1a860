"""8.07 Curriculum learning.

Compared: a digits MLP (64 -> 64 -> 10, Adam, batch 32; sklearn's 8x8 digits from
``harness.data.digits``) trained three ways on the same data, seeds and budget (Wu, Dyer &
Neyshabur, "When Do Curricula Work?", ICLR 2021): *curriculum* (examples ordered easy to hard
by a linear probe's per-example loss; step t draws uniformly from the easiest
ceil(g(t) N), with linear pacing g from 20 % to everything at 80 % of the steps), *random order*
(every example from step 0) and *anti-curriculum* (the same pacing over the reversed order).
Three regimes: a short budget (40 steps), the standard one (400 steps) and the standard one
with 40 % of the training labels replaced by random ones (``kernels.curriculum.pacing``).

Check (tiny): the pacing on a worked example (N = 10, start 0.2, full at half of 10 steps:
2, 4, 6, 7, 9, 10, ... exposed) and the sampler draws exactly from that prefix, every one of
its examples (none beyond); the order is easiest first; every example is exposed once the
pacing reaches 1; curriculum and random order train on the same number of samples and both
learn (held-out accuracy above 50 %, chance 10 %).

Bench: held-out accuracy of the three arms in each regime (mean of 3 seeds) as a table and
metrics; the time of the short-budget run with a curriculum and in random order.

Lesson: Wu et al. (2021) ran thousands of orderings on CIFAR and found that curricula, random
and anti-curricula end up alike under standard budgets, and that a curriculum helps only when
the budget is short or the labels are noisy. Noise is where the mechanism is clearest: a probe
gives mislabelled examples a high loss, so easy-first defers them to the end and hard-first
trains on them first. The claims state the published regimes; their verdicts say whether they
hold for digits with this pacing (easy digits carry little information, so a short curriculum
can also lose).
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.curriculum.pacing import exposed, linear_pacing, paced_batches, probe_difficulty
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """Budgets, noise and seeds."""

    short_steps: int = 40
    """Adam steps of the short budget (batch 32)"""
    standard_steps: int = 400
    """Adam steps of the standard budget"""
    noise: float = 0.4
    """share of training labels replaced by uniform random ones in the noisy regime"""
    seeds: int = 3
    """runs per arm and regime"""
    start: float = 0.2
    """share exposed at step 0"""
    full_at: float = 0.8
    """share of the steps after which everything is exposed"""


# -- the wrong versions (mutants) ------------------------------------------------------------
def _floor(fraction, n):
    return max(1, int(fraction * n))  # rounds the exposed count down


def _never_grows(step, total_steps, start, full_at):
    return start


@task("advanced.curriculum", seed="8.07", title="curriculum learning")
class Curriculum(Comparison):
    __doc__ = __doc__
    variants = ("curriculum", "random_order")
    sizes = {"tiny": CurriculumConfig(seeds=2), "cpu": CurriculumConfig()}
    metrics = {
        f"{r}_{a}_pts": f"{r} regime: {a.replace('_', ' ')}, held-out accuracy points (mean over seeds)"
        for r in ("short", "standard", "noisy")
        for a in ("curriculum_minus_random", "curriculum_minus_anti")
    }
    claims = (
        metric("noisy_curriculum_minus_anti_pts", ">=", 1.0,
               text="40 % label noise: easy-first beats hard-first by >= 1 point (Wu et al. 2021)"),
        metric("standard_curriculum_minus_random_pts", ">=", -2.0,
               text="standard budget, clean labels: the curriculum within 2 points of random order"),
        metric("short_curriculum_minus_random_pts", ">=", 0.0,
               text="short budget: the curriculum at least matches random order (Wu et al. 2021)"),
    )  # fmt: skip
    exposed = staticmethod(exposed)
    pacing = staticmethod(linear_pacing)
    descending = False  # order hardest first when True
    mutants = (
        Mutant("floor_count", "the exposed count rounds down", {"exposed": staticmethod(_floor)}, match="pacing"),
        Mutant("pool_never_grows", "the pacing stays at its start share", {"pacing": staticmethod(_never_grows)},
               match="pacing"),
        Mutant("hardest_first", "the difficulty order is reversed", {"descending": True}, match="easiest first"),
    )  # fmt: skip

    def check(self, ctx):
        pace = functools.partial(self.pacing, total_steps=10, start=0.2, full_at=0.5)
        counts = [self.exposed(pace(t), 10) for t in range(10)]
        want = [2, 4, 6, 7, 9, 10, 10, 10, 10, 10]
        ctx.expect(counts == want, f"pacing exposes {counts} of 10, want {want}", name="pacing exposes ceil(g(t) N)")
        order = torch.randperm(10, generator=ctx.generator())
        batches = paced_batches(order, 10, 400, pace, ctx.generator(1), self.exposed)
        for t, k in enumerate(want):
            got = set(batches[t].tolist())
            ctx.expect(got == set(order[:k].tolist()), f"step {t}: drew examples {sorted(got)}, not exactly the "
                       f"{k} easiest {sorted(order[:k].tolist())}",
                       name="pacing: draws exactly the exposed prefix")  # fmt: skip
        xtr, ytr, xte, yte = digits_split(seed=0)
        cfg = ctx.configs[0]
        d = probe_difficulty(xtr, ytr, seed=ctx.rng_seed)
        o = self._order(d)
        ctx.expect(bool((d[o][1:] >= d[o][:-1]).all()), "the curriculum order is not easiest first",
                   name="order is easiest first")  # fmt: skip
        full = self.exposed(self.pacing(int(cfg.full_at * cfg.short_steps), cfg.short_steps, cfg.start, cfg.full_at),
                            len(ytr))  # fmt: skip
        ctx.expect(full == len(ytr), f"pacing exposes {full} of {len(ytr)} at the end", name="every example exposed")
        for s in range(cfg.seeds):
            accs = [self._train(cfg, arm, o, xtr, ytr, xte, yte, cfg.short_steps, s) for arm in self.variants]
            ctx.expect(min(accs) > 0.5, f"seed {s}: held-out accuracy {accs} (curriculum, random) after "
                       f"{cfg.short_steps} steps of 32: not learning",
                       name="both arms learn on the same budget")  # fmt: skip

    def _order(self, difficulty):
        return difficulty.argsort(descending=self.descending)

    def _train(self, cfg, arm, order, xtr, ytr, xte, yte, steps, seed):
        torch.manual_seed(seed)
        model = MLP(MLPConfig(in_features=64, hidden=(64,)))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        if arm == "random_order":
            order, pace = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(seed)), lambda t: 1.0
        else:
            order = order.flip(0) if arm == "anti" else order
            pace = functools.partial(self.pacing, total_steps=steps, start=cfg.start, full_at=cfg.full_at)
        for idx in paced_batches(order, steps, 32, pace, torch.Generator().manual_seed(seed), self.exposed):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return float((model(xte).argmax(-1) == yte).float().mean())

    def bench(self, ctx):
        cfg = ctx.configs[0]
        xtr, ytr, xte, yte = digits_split(seed=0)
        rows = []
        for regime, steps, noise in (("short", cfg.short_steps, 0.0), ("standard", cfg.standard_steps, 0.0),
                                     ("noisy", cfg.standard_steps, cfg.noise)):  # fmt: skip
            g = ctx.generator(5)
            y = ytr.clone()
            flip = torch.rand(len(y), generator=g) < noise
            y[flip] = torch.randint(0, 10, (int(flip.sum()),), generator=g)
            order = self._order(probe_difficulty(xtr, y, seed=ctx.rng_seed))
            acc = {arm: sum(self._train(cfg, arm, order, xtr, y, xte, yte, steps, s) for s in range(cfg.seeds))
                   / cfg.seeds for arm in ("curriculum", "random_order", "anti")}  # fmt: skip
            rows.append({"regime": regime, "steps": steps, **{k: round(v, 4) for k, v in acc.items()}})
            ctx.metric(f"{regime}_curriculum_minus_random_pts", 100 * (acc["curriculum"] - acc["random_order"]))
            ctx.metric(f"{regime}_curriculum_minus_anti_pts", 100 * (acc["curriculum"] - acc["anti"]))
        ctx.table("held-out accuracy by regime (mean over seeds)", rows)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        xtr, ytr, xte, yte = digits_split(seed=0)
        order = self._order(probe_difficulty(xtr, ytr, seed=ctx.rng_seed))
        run = lambda: self._train(config, impl, order, xtr, ytr, xte, yte, config.short_steps, 0)  # noqa: E731
        return Prepared(fn=run, items=config.short_steps * 32, item_unit="samples")
