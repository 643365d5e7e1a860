"""8.07 Curriculum learning.

Compared: a digits MLP (64 -> 64 -> 10, Adam, batch 32, sklearn's 8x8 digits) trained three
ways on the same data, seeds and budget (Wu, Dyer & Neyshabur, "When Do Curricula Work?",
ICLR 2021): *curriculum* (easy to hard by a linear probe's per-example loss; step t draws
uniformly from the easiest ceil(g(t) N), linear pacing g from 20 % to all at 80 % of the
steps), *random order* (all examples from step 0) and *anti-curriculum* (the same pacing,
reversed order); in three regimes: short (40 steps), standard (400) and standard with 40 % of
the training labels random (pacing, sampler, training loop: :mod:`kernels.curriculum.pacing`).
The check works the pacing by hand (N = 10, 0.2 to all at half of 10 steps: 2, 4, 6, 7, 9, 10
exposed) and wants both arms above 50 % held-out accuracy (chance 10 %) on the short budget;
the bench times that short run, with a curriculum and in random order.

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

from harness import Comparison, Prepared, task
from harness.claims import metric
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.curriculum import pacing as P
from kernels.curriculum.wrong import floor_exposed, never_grows


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
    claims = tuple(
        metric(f"{regime}_curriculum_minus_{vs}_pts", ">=", bound, text=text)
        for regime, vs, bound, text in (
            ("noisy", "anti", 1.0, "40 % label noise: easy-first beats hard-first by >= 1 point (Wu et al. 2021)"),
            ("standard", "random", -2, "standard budget, clean labels: the curriculum within 2 points of random order"),
            ("short", "random", 0.0, "short budget: the curriculum at least matches random order (Wu et al. 2021)"),
        )
    )
    exposed = staticmethod(P.exposed)
    pacing = staticmethod(P.linear_pacing)
    descending = False  # order hardest first when True
    mutants = (
        Mutant("floor_count", "the exposed count rounds down", {"exposed": staticmethod(floor_exposed)}, "pacing"),
        Mutant(
            "pool_never_grows", "the pacing stays at its start share", {"pacing": staticmethod(never_grows)}, "pacing"
        ),
        Mutant("hardest_first", "the difficulty order is reversed", {"descending": True}, match="easiest first"),
    )

    def check(self, ctx):
        pace = functools.partial(self.pacing, total_steps=10, start=0.2, full_at=0.5)
        counts = [self.exposed(pace(t), 10) for t in range(10)]
        want = [2, 4, 6, 7, 9, 10, 10, 10, 10, 10]
        ctx.expect(counts == want, f"pacing exposes {counts} of 10, want {want}", name="pacing exposes ceil(g(t) N)")
        order = torch.randperm(10, generator=ctx.generator())
        batches = P.paced_batches(order, 10, 400, pace, ctx.generator(1), self.exposed)  # (10 steps, 400)
        for t, k in enumerate(want):
            got, easiest = sorted(set(batches[t].tolist())), sorted(order[:k].tolist())
            ctx.expect(
                got == easiest,
                f"step {t}: drew examples {got}, not exactly the {k} easiest {easiest}",
                name="pacing: draws exactly the exposed prefix",
            )
        cfg, data = ctx.configs[0], digits_split(seed=0)
        d = P.probe_difficulty(data[0], data[1], seed=ctx.rng_seed)
        o = d.argsort(descending=self.descending)
        easy_first = bool(d[o].diff().ge(0).all())  # difficulty non-decreasing along the order
        ctx.expect(easy_first, "the curriculum order is not easiest first", name="order is easiest first")
        n = len(o)
        full = self.exposed(self.pacing(int(cfg.full_at * cfg.short_steps), cfg.short_steps, cfg.start, cfg.full_at), n)
        ctx.expect(full == n, f"pacing exposes {full} of {n} at the end", name="every example exposed")
        for s in range(cfg.seeds):
            accs = [self._train(cfg, arm, o, data, cfg.short_steps, s) for arm in self.variants]
            ctx.expect(
                min(accs) > 0.5,
                f"seed {s}: held-out accuracy {accs} (curriculum, random) after {cfg.short_steps} steps of 32",
                name="both arms learn on the same budget",
            )

    def _train(self, cfg, arm, order, data, steps, seed):
        """One arm's held-out accuracy: random order sees everything from step 0 (g = 1)."""
        pace = functools.partial(self.pacing, total_steps=steps, start=cfg.start, full_at=cfg.full_at)
        if arm == "random_order":
            order, pace = torch.randperm(len(order), generator=torch.Generator().manual_seed(seed)), lambda t: 1.0
        order = order.flip(0) if arm == "anti" else order  # anti-curriculum: the same pacing, hardest first
        return P.train_paced(order, pace, data, steps, seed=seed, exposed_fn=self.exposed)

    def bench(self, ctx):
        cfg, (xtr, ytr, xte, yte) = ctx.configs[0], digits_split(seed=0)  # (N, 64) float, (N,) int64
        rows = []
        for regime, steps, noise in (
            ("short", cfg.short_steps, 0.0),
            ("standard", cfg.standard_steps, 0.0),
            ("noisy", cfg.standard_steps, cfg.noise),
        ):
            data = (xtr, P.noisy_labels(ytr, noise, ctx.generator(5)), xte, yte)
            order = P.probe_difficulty(data[0], data[1], seed=ctx.rng_seed).argsort(descending=self.descending)
            acc = {
                a: sum(self._train(cfg, a, order, data, steps, s) for s in range(cfg.seeds)) / cfg.seeds
                for a in ("curriculum", "random_order", "anti")
            }
            rows.append({"regime": regime, "steps": steps, **{k: round(v, 4) for k, v in acc.items()}})
            ctx.metric(f"{regime}_curriculum_minus_random_pts", 100 * (acc["curriculum"] - acc["random_order"]))
            ctx.metric(f"{regime}_curriculum_minus_anti_pts", 100 * (acc["curriculum"] - acc["anti"]))
        ctx.table("held-out accuracy by regime (mean over seeds)", rows)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        data = digits_split(seed=0)
        order = P.probe_difficulty(data[0], data[1], seed=ctx.rng_seed).argsort(descending=self.descending)
        run = lambda: self._train(config, impl, order, data, config.short_steps, 0)
        return Prepared(fn=run, items=config.short_steps * 32, item_unit="samples")
