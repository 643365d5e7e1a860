"""m6 Fixed seeds verify reproducibility.

Compared: one training step with deterministic algorithms on and off (the bench: the cost of
determinism). Checked: the same short run twice with ``torch.use_deterministic_algorithms(True)``,
fed by a DataLoader with two worker processes whose augmentation (a random shift and pixel
noise, ``harness.data.seeded.AugmentedDigits``) draws from a NumPy Generator made in the
parent, and a run interrupted after k batches, resumed from ``ResumableSampler``'s state.

Lesson: a seed fixes only the generators it reaches. PyTorch's "Reproducibility" notes list what
else must be pinned: each DataLoader worker's NumPy and ``random`` state, the loader's own
generator, the deterministic-algorithm switch (and on CUDA, ``CUBLAS_WORKSPACE_CONFIG``), and the
position in the data stream when a run resumes. Since PyTorch 1.9 the loader seeds NumPy's global
generator in each worker, but a ``np.random.Generator`` made in the parent is copied into every
worker unchanged, so all of them replay the same "random" augmentations unless a ``worker_init_fn``
(``seed_worker`` here) re-seeds it: the modern form of the duplicated-augmentation bug.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from harness import Comparison, Prepared, task
from harness.claims import time_ratio
from harness.data.seeded import AugmentedDigits, ResumableSampler, seed_worker
from harness.mutants import Mutant
from harness.repro import deterministic
from harness.train import standard_step
from kernels.rng.wrong import RestartingSampler, unseeded_worker


@dataclasses.dataclass(frozen=True)
class SeededConfig:
    """Data, loader and training length."""

    samples: int = 256
    """digits used (of 1,797)"""
    batch: int = 32
    """samples per batch"""
    workers: int = 2
    """DataLoader worker processes"""
    resume_after: int = 3
    """batches before the simulated interruption"""


def _net(seed: int, device="cpu") -> tuple[nn.Module, torch.optim.Optimizer]:
    """A small CNN for (B, 1, 8, 8) digits, initialised from ``seed``, and its SGD optimizer."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


@task("m6.seeded_runs", seed="m6", title="fixed seeds verify reproducibility")
class SeededRuns(Comparison):
    __doc__ = __doc__
    variants = ("nondeterministic", "deterministic")
    sizes = {"tiny": SeededConfig(), "cpu": SeededConfig(samples=1024, batch=64)}
    # worker processes start slowly on a busy 2-core machine (~20 s quiet, minutes loaded)
    time_limit_s = {"check": 600.0, "bench": 600.0, "run": 900.0}
    claims = (
        time_ratio(
            "deterministic",
            to="nondeterministic",
            at_most=1.5,
            text="deterministic algorithms cost at most 1.5x the step time",
        ),
    )
    worker_init = staticmethod(seed_worker)
    sampler_cls = ResumableSampler
    mutants = (
        Mutant(
            "unseeded_workers",
            "NumPy never seeded in the workers",
            {"worker_init": staticmethod(unseeded_worker)},
            match="workers",
        ),
        Mutant(
            "resume_from_epoch_start",
            "resume ignores the position in the epoch",
            {"sampler_cls": RestartingSampler},
            match="resume",
        ),
    )

    def _loader(self, cfg, seed, workers, sampler=None):
        data = AugmentedDigits(cfg.samples, seed=seed)
        sampler = sampler or self.sampler_cls(len(data), seed)
        g = torch.Generator().manual_seed(seed)  # the loader's base seed for its workers
        return DataLoader(
            data, cfg.batch, sampler=sampler, num_workers=workers, worker_init_fn=self.worker_init, generator=g
        ), sampler

    def _train(self, cfg, seed, workers):
        """The final parameters (flat) and each batch's noise draw, in batch order."""
        (model, opt), batches = _net(seed), []
        for x, y, _, draw in self._loader(cfg, seed, workers)[0]:
            standard_step(model, opt, x, y)
            batches.append(draw)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), batches

    def check(self, ctx):
        cfg = ctx.configs[0]
        with deterministic(True):
            (a, batches), (b, _) = (self._train(cfg, ctx.rng_seed, cfg.workers) for _ in range(2))  # same seed twice
            c, _ = self._train(cfg, ctx.rng_seed + 1, 0)  # any other seed will do, without workers
        ctx.expect(
            torch.equal(a, b),
            f"two runs with seed {ctx.rng_seed} differ in {int((a != b).sum())} of {a.numel()} parameters",
            name="same seed: bit-identical",
        )
        ctx.expect(
            not torch.equal(a, c),
            "seeds 0 and 1 gave identical parameters: the comparison is blind",
            name="other seed: different",
        )
        # batch 0 comes from worker 0, batch 1 from worker 1: equal draws = duplicated streams
        ctx.expect(
            not torch.equal(batches[0], batches[1]),
            "the two workers drew the same augmentation noise: their NumPy streams are copies",
            name="workers draw different augmentations",
        )
        # interrupted after k batches, resumed from the sampler's state (worker processes add nothing here)
        want = torch.cat([i for _, _, i, _ in self._loader(cfg, ctx.rng_seed, 0)[0]])
        first, sampler = self._loader(cfg, ctx.rng_seed, 0)
        seen = [i for _, (_, _, i, _) in zip(range(cfg.resume_after), first)]  # then interrupted
        sampler.advance(sum(len(i) for i in seen))  # only consumed batches count
        resumed = self.sampler_cls(cfg.samples, 0)
        resumed.load_state_dict(sampler.state_dict())
        rest, _ = self._loader(cfg, ctx.rng_seed, 0, sampler=resumed)
        got = torch.cat(seen + [i for _, _, i, _ in rest])
        ctx.expect(
            torch.equal(got, want),
            f"after a resume at batch {cfg.resume_after} the run saw samples "
            f"{got[:8].tolist()}... instead of {want[:8].tolist()}...",
            name="resume: same samples",
        )

    def prepare(self, ctx, impl, config):
        model, opt = _net(ctx.rng_seed, ctx.device)
        x = torch.rand(config.batch, 1, 8, 8, generator=ctx.generator()).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=ctx.generator(1)).to(ctx.device)

        def step():
            with deterministic(impl == "deterministic"):
                standard_step(model, opt, x, y)

        return Prepared(fn=step, items=config.batch, item_unit="samples")
