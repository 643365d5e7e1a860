"""9.04 Checkpoint and resume training.

Compared: a run of N optimizer steps taken in one go, against the same run stopped after k
steps, saved, thrown away and resumed in a fresh object with other initial weights and
reseeded RNGs (what a new process would have). The run (``kernels.checkpointing.run``) holds
every kind of state: weights with dropout, AdamW's moments, a warmup/decay ``LambdaLR``, a
``torch.amp.GradScaler`` that overflows and skips steps, input noise from NumPy's global RNG,
a feature dropped by Python's ``random``, and the data position (epoch, step in the epoch;
each epoch's order seeded by the epoch as ``DistributedSampler.set_epoch`` does).

Check:

* the resumed run's losses after step k and its whole final state (every weight, moment,
  LR, scale, RNG state and position) equal the uninterrupted run's bit for bit;
* an exception raised by the writer mid-write, and a child process SIGKILLed mid-write,
  both leave the last good checkpoint byte for byte as it was (``harness.checkpoint``:
  temporary file in the same folder, fsync, ``os.replace``, fsync of the folder);
* loading uses ``torch.load(weights_only=True)``: a checkpoint holding NumPy's raw RNG
  state (an ndarray inside a tuple) or a class instance is refused with a message naming
  the object and the fix; a truncated file is reported as such.

Bench: save (with and without fsync) and load throughput, MB/s, against the state's size.

Lesson: "resume" means *every* state that decides the next step, not the weights. The
PyTorch tutorial "Saving and loading a general checkpoint" lists model and optimizer; the
mutants show that the scheduler (the LR jumps back to warmup), the scaler (other steps get
skipped), each RNG (other dropout masks and noise) and the data position (batches seen
twice) each break the equality on their own. Long runs resume often: Meta's Llama 3 report
counts 466 job interruptions, 419 of them unexpected, in a 54-day snapshot of pre-training
(Dubey et al. 2024, "The Llama 3 Herd of Models", sec. 3.3.4). And a checkpoint written in
place is only as good as the moment it was interrupted: Pillai et al. (OSDI 2014, "All File
Systems Are Not Created Equal") found 60 crash vulnerabilities in 11 widely used systems,
update protocols whose correctness hangs on how the file system orders and persists
writes and renames; write-temp, fsync, rename, fsync-folder needs none of those guesses.
``weights_only=True`` is torch.load's default since PyTorch 2.6 because unpickling can run
arbitrary code (PyTorch docs, ``torch.load``): state saved as tensors and numbers needs no
exception to that rule. fsync costs what the disk costs (nothing on tmpfs; a flush of the
drive's cache on an SSD): the bench records the file system it measured on.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import random
import signal

import numpy as np
import torch

from harness import Prepared, System, task
from harness.checkpoint import CheckpointError, atomic_save, load_checkpoint, stale_temps
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.checkpointing import faults
from kernels.checkpointing.run import (
    ALL_PARTS,
    ResumableRun,
    RunConfig,
    count_differences,
    first_difference,
    seed_everything,
)


@dataclasses.dataclass(frozen=True)
class CkptConfig:
    """The resume run (check) and the size of the state the bench saves and loads."""

    run: RunConfig
    """the training run stopped and resumed"""
    state_mb: float = 4.0
    """bench: size of the saved state dict, MB (10**6 bytes), float32 tensors of 1 M elements"""

    def label(self) -> str:
        return f"{self.state_mb:g}MB"


def _without(*names: str) -> tuple[str, ...]:
    return tuple(p for p in ALL_PARTS if p not in names)


@task("deployment.checkpointing", seed="9.04", title="checkpoint and resume training")
class Checkpointing(System):
    __doc__ = __doc__
    variants = ("save_fsync", "save_no_fsync", "load")
    sizes = {
        "tiny": [CkptConfig(RunConfig(), 1.0), CkptConfig(RunConfig(), 8.0)],
        "cpu": [CkptConfig(RunConfig(), s) for s in (1.0, 8.0, 64.0)],
        "gpu": [CkptConfig(RunConfig(), s) for s in (1.0, 16.0, 256.0)],
    }
    metrics = {
        "resume_mismatched_states": "states (tensors, numbers) that differ between resumed and uninterrupted run"
    }
    claims = (
        metric("resume_mismatched_states", "<=", 0, text="the resumed run equals the uninterrupted one bit for bit"),
        speedup("load", over="save_fsync", at_least=1.0, text="loading a checkpoint is faster than a durable save"),
    )
    parts: tuple[str, ...] = ALL_PARTS
    saver = staticmethod(atomic_save)
    loader = staticmethod(load_checkpoint)
    mutants = (
        Mutant("model_only", "saves the weights only", {"parts": ("model",)}, match="resumed"),
        Mutant("no_optimizer", "leaves out AdamW's moments", {"parts": _without("optimizer")}, match="resumed"),
        Mutant("no_scheduler", "leaves out the LR scheduler", {"parts": _without("scheduler")}, match="resumed"),
        Mutant("no_scaler", "leaves out the GradScaler", {"parts": _without("scaler")}, match="resumed"),
        Mutant("no_rng", "leaves out every RNG state", {"parts": _without("torch_rng", "numpy_rng", "python_rng")},
               match="resumed"),
        Mutant("no_torch_rng", "leaves out torch's RNG (dropout)", {"parts": _without("torch_rng")}, match="resumed"),
        Mutant("no_numpy_rng", "leaves out NumPy's RNG", {"parts": _without("numpy_rng")}, match="resumed"),
        Mutant("no_python_rng", "leaves out Python's RNG", {"parts": _without("python_rng")}, match="resumed"),
        Mutant("no_data_position", "restarts the data at epoch 0", {"parts": _without("data")}, match="resumed"),
        Mutant("in_place_write", "writes over the checkpoint itself", {"saver": staticmethod(faults.write_in_place)},
               match="exception"),
        Mutant("restores_on_error", "writes in place and puts the old bytes back on an exception (not on a kill)",
               {"saver": staticmethod(faults.write_in_place_restoring)}, match="SIGKILL"),
        Mutant("unsafe_load", "torch.load(weights_only=False)", {"loader": staticmethod(faults.unsafe_load)},
               match="refused"),
    )  # fmt: skip

    # -- check ----------------------------------------------------------------------------
    def check(self, ctx):
        cfg = ctx.configs[0].run
        folder = ctx.workdir
        path = folder / "last.pt"
        seed_everything(ctx.rng_seed)
        whole = ResumableRun(cfg, ctx.rng_seed, ctx.device)
        losses = [whole.step() for _ in range(cfg.steps)]
        seed_everything(ctx.rng_seed)
        first = ResumableRun(cfg, ctx.rng_seed, ctx.device)
        for _ in range(cfg.stop_at):
            first.step()
        self.saver(first.state(self.parts), path)
        good = path.read_bytes()
        del first
        seed_everything(ctx.rng_seed + 1000)  # a new process: other weights, other RNG streams
        resumed = ResumableRun(cfg, ctx.rng_seed + 1, ctx.device)
        resumed.load(self.loader(path))
        after = [resumed.step() for _ in range(cfg.steps - cfg.stop_at)]
        where = first_difference(whole.snapshot(), resumed.snapshot())
        bad_losses = sum(a != b for a, b in zip(losses[cfg.stop_at :], after))
        ctx.metric("resume_mismatched_states", count_differences(whole.snapshot(), resumed.snapshot()))
        ctx.note(f"{whole.skipped} of {cfg.steps} steps skipped by the GradScaler (overflow): its state matters")
        ctx.expect(
            where is None and bad_losses == 0,
            f"resumed run differs from the uninterrupted one: {bad_losses} of {len(after)} losses after step "
            f"{cfg.stop_at}, first differing state {where!r} (checkpoint parts: {', '.join(self.parts)})",
            name="resumed == uninterrupted, bit for bit",
        )
        self._interrupted_writes(ctx, resumed, path, good)
        self._safe_load(ctx, folder)

    def _interrupted_writes(self, ctx, run, path, good):
        # a later state (overwriting `good` would show), on the CPU: a forked child must not touch CUDA
        newer = torch.utils._pytree.tree_map(lambda v: v.cpu() if torch.is_tensor(v) else v, run.state(ALL_PARTS))
        try:
            self.saver(newer, path, wrap=lambda f: faults.FailingFile(f, after_bytes=len(good) // 2))
        except (OSError, RuntimeError):  # torch's zip writer reports a failed write as RuntimeError
            pass
        ctx.expect(
            path.read_bytes() == good,
            "an exception mid-write spoiled the last good checkpoint (write to a temporary file, then os.replace)",
            name="exception mid-write: last good checkpoint intact",
        )
        if "fork" not in mp.get_all_start_methods():
            ctx.skip_part("SIGKILL mid-write", "needs the fork start method (POSIX)")
            return
        mpc = mp.get_context("fork")  # the child inherits the task (and a mutant's saver) as it is
        midway = mpc.Event()
        stall = lambda f: faults.StallingFile(f, len(good) // 2, midway)  # noqa: E731 - a one-line wrapper
        child = mpc.Process(target=self.saver, args=(newer, path), kwargs={"wrap": stall})
        child.start()
        try:
            reached = midway.wait(60.0)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.join(10.0)
        ctx.expect(reached, "the child never reached the middle of its write", name="child killed mid-write")
        ctx.expect(
            path.read_bytes() == good and child.exitcode == -signal.SIGKILL,
            f"a process killed mid-write (SIGKILL, exit code {child.exitcode}) spoiled the last good checkpoint",
            name="SIGKILL mid-write: last good checkpoint intact",
        )
        self.loader(path)  # and it still loads
        left = stale_temps(path.parent)
        ctx.note(f"the killed writer left {len(left)} temporary file(s) beside the checkpoint (stale_temps)")
        for f in left:
            f.unlink()

    def _safe_load(self, ctx, folder):
        bad = {
            "numpy RNG tuple": {"rng": np.random.get_state()},  # the classic: an ndarray inside a tuple
            "class instance": {"data": random.Random(0)},
        }
        for what, state in bad.items():
            p = folder / f"bad_{what.replace(' ', '_')}.pt"
            torch.save(state, p)
            try:
                self.loader(p)
            except CheckpointError as e:
                ok = "refuses" in str(e) and "add_safe_globals" in str(e)
                ctx.expect(ok, f"{what}: refused without a clear message: {e}", name="unsafe object refused")
                continue
            ctx.expect(False, f"a checkpoint holding a {what} was loaded, not refused", name="unsafe object refused")
        p = folder / "truncated.pt"
        p.write_bytes((folder / "last.pt").read_bytes()[:100])
        ctx.expect_raises(CheckpointError, lambda: load_checkpoint(p), match="truncated", name="truncated file named")

    # -- bench ----------------------------------------------------------------------------
    def prepare(self, ctx, impl, config):
        n = 1_000_000  # elements per tensor: the state is a stack of 4 MB tensors (a model's layers)
        k, rest = divmod(int(config.state_mb * 1e6 / 4), n)
        g = ctx.generator()
        state = {f"layer{i}.weight": torch.randn(n, generator=g).to(ctx.device) for i in range(k)}
        if rest:
            state["tail"] = torch.randn(rest, generator=g).to(ctx.device)
        nbytes = sum(t.numel() * t.element_size() for t in state.values())
        path = ctx.workdir / f"bench_{config.label()}.pt"
        atomic_save(state, path, fsync=False)
        if impl == "load":
            fn = lambda: load_checkpoint(path, map_location=ctx.device)  # noqa: E731 - the timed call
        else:
            fn = lambda: atomic_save(state, path, fsync=impl == "save_fsync")  # noqa: E731
        return Prepared(fn=fn, bytes=nbytes, teardown=lambda: path.unlink(missing_ok=True))

    def bench(self, ctx):
        ctx.note(f"checkpoints written to {ctx.workdir} on {faults.filesystem_of(ctx.workdir)}")
        for config in ctx.configs:
            for impl in self.variants:
                p = self.prepare(ctx, impl, config)
                try:
                    ctx.measure(impl, p, config=config, waits=True)  # waits: the disk, not the CPU
                finally:
                    p.teardown()
