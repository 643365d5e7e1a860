"""m6 Fixed seeds verify reproducibility.

Compared: the same short training run twice, fed by a DataLoader with two worker processes
whose augmentation (a random shift and pixel noise) draws from a NumPy Generator the data set
made in the parent (``harness.data.seeded.AugmentedDigits``), with
``torch.use_deterministic_algorithms(True)``.

Check:

* two runs with the same seed end with bit-identical parameters; a different seed gives
  different ones (the comparison can see a difference);
* the two workers draw different augmentations: each worker's copy of the generator is
  re-seeded from the per-worker seed torch derives from the loader's generator
  (``harness.data.seeded.seed_worker``), not inherited unchanged from the parent;
* a run interrupted after k batches and resumed from the sampler's state
  (``ResumableSampler.state_dict``) sees exactly the samples the uninterrupted run saw.

Bench: the cost of determinism: one training step with deterministic algorithms on and off.

Lesson: a seed fixes only the generators it reaches. PyTorch's "Reproducibility" notes list
what else must be pinned: each DataLoader worker's NumPy and ``random`` state (the
``worker_init_fn`` above), the loader's own generator, the deterministic-algorithm switch
(and on CUDA, ``CUBLAS_WORKSPACE_CONFIG``), and the position in the data stream when a run
resumes. Since PyTorch 1.9 the loader seeds NumPy's global generator in each worker, but a
``np.random.Generator`` object created in the parent is copied into every worker as it is,
so every worker replays the same "random" augmentations unless a ``worker_init_fn``
re-seeds it: the modern form of the duplicated-augmentation bug.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from harness import Comparison, Prepared, task
from harness.claims import time_ratio
from harness.data.seeded import AugmentedDigits, ResumableSampler, seed_worker
from harness.mutants import Mutant


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


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))


# -- wrong versions (the check must reject each) -------------------------------------------
def _no_seed(worker_id: int) -> None:
    """A worker_init_fn that forgets the data set's generator: every worker replays the parent's stream."""


class _RestartingSampler(ResumableSampler):
    def load_state_dict(self, state):  # resumes at the start of the epoch
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])


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
            {"worker_init": staticmethod(_no_seed)},
            match="workers",
        ),
        Mutant(
            "resume_from_epoch_start",
            "resume ignores the position in the epoch",
            {"sampler_cls": _RestartingSampler},
            match="resume",
        ),
    )

    def _loader(self, cfg, seed, sampler=None, workers=None):
        data = AugmentedDigits(cfg.samples, seed=seed)
        sampler = sampler or self.sampler_cls(len(data), seed)
        g = torch.Generator().manual_seed(seed)  # the loader's base seed for its workers
        return DataLoader(
            data,
            batch_size=cfg.batch,
            sampler=sampler,
            num_workers=cfg.workers if workers is None else workers,
            worker_init_fn=self.worker_init,
            generator=g,
        ), sampler

    def _train(self, ctx, cfg, seed, workers=None):
        torch.manual_seed(seed)
        model, batches = _net(), []
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader, _ = self._loader(cfg, seed, workers=workers)
        for x, y, _, draw in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            batches.append(draw)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), batches

    def check(self, ctx):
        cfg = ctx.configs[0]
        was = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            a, batches = self._train(ctx, cfg, ctx.rng_seed)
            b, _ = self._train(ctx, cfg, ctx.rng_seed)
            c, _ = self._train(ctx, cfg, ctx.rng_seed + 1, workers=0)  # any other seed will do
        finally:
            torch.use_deterministic_algorithms(was)
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
        self._check_resume(ctx, cfg)

    def _check_resume(self, ctx, cfg):
        # the sampler's state is what resumes the stream: worker processes add nothing here
        full, _ = self._loader(cfg, ctx.rng_seed, workers=0)
        want = torch.cat([i for _, _, i, _ in full])
        first, sampler = self._loader(cfg, ctx.rng_seed, workers=0)
        seen = []
        for k, (_, _, i, _) in enumerate(first):
            if k == cfg.resume_after:
                break  # interrupted: only consumed batches count
            seen.append(i)
            sampler.advance(len(i))
        state = sampler.state_dict()
        resumed_sampler = self.sampler_cls(cfg.samples, 0)
        resumed_sampler.load_state_dict(state)
        rest, _ = self._loader(cfg, ctx.rng_seed, sampler=resumed_sampler, workers=0)
        got = torch.cat(seen + [i for _, _, i, _ in rest])
        ctx.expect(
            torch.equal(got, want),
            f"after a resume at batch {cfg.resume_after} the run saw samples "
            f"{got[:8].tolist()}... instead of {want[:8].tolist()}...",
            name="resume: same samples",
        )

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        model = _net().to(ctx.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.rand(config.batch, 1, 8, 8, generator=ctx.generator()).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=ctx.generator(1)).to(ctx.device)

        def step():
            was = torch.are_deterministic_algorithms_enabled()
            torch.use_deterministic_algorithms(impl == "deterministic")
            try:
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            finally:
                torch.use_deterministic_algorithms(was)

        return Prepared(fn=step, items=config.batch, item_unit="samples")
