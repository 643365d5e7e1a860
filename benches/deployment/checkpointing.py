"""9.04 Checkpoint and resume training.

Compared: a run of N optimizer steps taken in one go, against the same run stopped after k steps,
saved, thrown away and resumed in a fresh object with other initial weights and reseeded RNGs (what
a new process would have): losses and final state must agree bit for bit. The run
(``kernels.checkpointing.run``) holds every kind of state: weights with dropout, AdamW's moments, a
warmup/decay ``LambdaLR``, a ``torch.amp.GradScaler`` that overflows and skips steps, NumPy's and
Python's global RNGs, and the data position (each epoch's order seeded as
``DistributedSampler.set_epoch`` does). Checked too (``harness.checkpoint``): a write interrupted by
an exception or a SIGKILL leaves the last good checkpoint byte for byte intact; the loader refuses
unexpected objects by name and names a truncated file. Timed: save (with, without fsync), load, MB/s.

Lesson: "resume" means *every* state that decides the next step, not the weights. The PyTorch
tutorial "Saving and loading a general checkpoint" lists model and optimizer; the mutants show that
the scheduler (the LR jumps back to warmup), the scaler (other steps skipped), each RNG (other
dropout masks and noise) and the data position (batches seen twice) each break the equality alone.
Long runs resume often: Meta's Llama 3 report counts 466 job interruptions, 419 of them unexpected,
in a 54-day snapshot of pre-training (Dubey et al. 2024, "The Llama 3 Herd of Models", sec. 3.3.4).
A checkpoint written in place is only as good as the moment it was interrupted: Pillai et al. (OSDI
2014, "All File Systems Are Not Created Equal") found 60 crash vulnerabilities in 11 widely used
systems whose update protocols hang on how the file system orders and persists writes and renames;
a temporary file, fsync, ``os.replace`` and an fsync of the folder need no such guess.
``torch.load`` defaults to ``weights_only=True`` since PyTorch 2.6 because unpickling can run
arbitrary code (PyTorch docs): tensors and numbers need no exception. fsync costs what the disk
costs (nothing on tmpfs, a flush of the drive's cache on an SSD): the bench notes the file system.
"""

from __future__ import annotations

import dataclasses
import functools
import signal

from harness import Prepared, System, task
from harness.checkpoint import CheckpointError, atomic_save, load_checkpoint
from harness.claims import metric, speedup
from harness.mutants import Mutant, replace_functions
from kernels.checkpointing import faults
from kernels.checkpointing.run import ALL_PARTS, ResumableRun, RunConfig, layered_state, seed_everything, started_run
from kernels.checkpointing.run import count_differences as count_diffs
from kernels.checkpointing.run import first_difference as first_diff
from kernels.checkpointing.run import parts_without as without


@dataclasses.dataclass(frozen=True)
class CkptConfig:
    """The resume run (check) and the size of the state the bench saves and loads."""

    run: RunConfig
    """the training run stopped and resumed"""
    state_mb: float = 4.0
    """bench: size of the saved state dict, MB (10**6 bytes), float32 tensors of 1 M elements"""

    def label(self) -> str:
        return f"{self.state_mb:g}MB"


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
        Mutant("no_optimizer", "leaves out AdamW's moments", {"parts": without("optimizer")}, match="resumed"),
        Mutant("no_scheduler", "leaves out the LR scheduler", {"parts": without("scheduler")}, match="resumed"),
        Mutant("no_scaler", "leaves out the GradScaler", {"parts": without("scaler")}, match="resumed"),
        Mutant(
            "no_rng",
            "leaves out every RNG state",
            {"parts": without("torch_rng", "numpy_rng", "python_rng")},
            match="resumed",
        ),
        Mutant("no_torch_rng", "leaves out torch's RNG (dropout)", {"parts": without("torch_rng")}, match="resumed"),
        Mutant("no_numpy_rng", "leaves out NumPy's RNG", {"parts": without("numpy_rng")}, match="resumed"),
        Mutant("no_python_rng", "leaves out Python's RNG", {"parts": without("python_rng")}, match="resumed"),
        Mutant("no_data_position", "restarts the data at epoch 0", {"parts": without("data")}, match="resumed"),
        replace_functions(
            "in_place_write", "writes over the checkpoint itself", saver=faults.write_in_place, match="exception"
        ),
        replace_functions(
            "restores_on_error",
            "writes in place and puts the old bytes back on an exception (not on a kill)",
            saver=faults.write_in_place_restoring,
            match="SIGKILL",
        ),
        replace_functions("unsafe_load", "torch.load(weights_only=False)", loader=faults.unsafe_load, match="refused"),
    )

    def check(self, ctx):
        cfg, path = ctx.configs[0].run, ctx.workdir / "last.pt"
        whole, losses = started_run(cfg, ctx.rng_seed, ctx.device, steps=cfg.steps)
        # the same run stopped at stop_at, saved and thrown away
        self.saver(started_run(cfg, ctx.rng_seed, ctx.device, steps=cfg.stop_at)[0].state(self.parts), path)
        good = path.read_bytes()
        seed_everything(ctx.rng_seed + 1000)  # a new process: other weights, other RNG streams
        resumed = ResumableRun(cfg, ctx.rng_seed + 1, ctx.device)
        resumed.load(self.loader(path))
        after = [resumed.step() for _ in range(cfg.steps - cfg.stop_at)]
        where = first_diff(whole.snapshot(), resumed.snapshot())
        bad_losses = sum(a != b for a, b in zip(losses[cfg.stop_at :], after))
        ctx.metric("resume_mismatched_states", count_diffs(whole.snapshot(), resumed.snapshot()))
        ctx.note(f"{whole.skipped} of {cfg.steps} steps skipped by the GradScaler (overflow): its state matters")
        ctx.expect(
            where is None and bad_losses == 0,
            f"resumed run differs from the uninterrupted one: {bad_losses} of {len(after)} losses after step "
            f"{cfg.stop_at}, first differing state {where!r} (checkpoint parts: {', '.join(self.parts)})",
            name="resumed == uninterrupted, bit for bit",
        )
        self._interrupted_writes(ctx, resumed, path, good)
        self._safe_load(ctx, path.parent)

    def _interrupted_writes(self, ctx, run, path, good):
        newer = run.state(ALL_PARTS)  # a later state: overwriting `good` would show
        faults.fail_mid_write(self.saver, newer, path, len(good) // 2)
        ctx.expect(
            path.read_bytes() == good,
            "an exception mid-write spoiled the last good checkpoint (write to a temporary file, then os.replace)",
            name="exception mid-write: last good checkpoint intact",
        )
        killed = faults.kill_mid_write(self.saver, newer, path, len(good) // 2)
        if killed is None:
            return ctx.skip_part("SIGKILL mid-write", "needs the fork start method (POSIX)")
        ctx.expect(killed[0], "the child never reached the middle of its write", name="child killed mid-write")
        ctx.expect(
            path.read_bytes() == good and killed[1] == -signal.SIGKILL,
            f"a process killed mid-write (SIGKILL, exit code {killed[1]}) spoiled the last good checkpoint",
            name="SIGKILL mid-write: last good checkpoint intact",
        )
        self.loader(path)  # and it still loads
        n = faults.clear_stale(path.parent)
        ctx.note(f"the killed writer left {n} temporary file(s) beside the checkpoint (stale_temps)")

    def _safe_load(self, ctx, folder):
        for what, state in faults.unsafe_states().items():  # NumPy's RNG state, a class instance
            err = faults.refusal(self.loader, state, folder / f"bad_{what.replace(' ', '_')}.pt")
            how = "loaded, not refused" if err is None else f"refused without a clear message: {err}"
            ctx.expect(
                err is not None and "refuses" in err and "add_safe_globals" in err,
                f"a checkpoint holding a {what}: {how}",
                name="unsafe object refused",
            )
        p = faults.truncated_copy(folder / "last.pt", folder / "truncated.pt", 100)
        ctx.expect_raises(CheckpointError, lambda: load_checkpoint(p), match="truncated", name="truncated file named")

    def prepare(self, ctx, impl, config):
        state = layered_state(config.state_mb, ctx.generator(), ctx.device)  # 4 MB tensors, as a model's layers
        path = ctx.workdir / "bench.pt"  # one file, overwritten per config: the scratch folder holds one state
        atomic_save(state, path, fsync=False)  # the file load reads; every timed call waits on the disk
        save = functools.partial(atomic_save, state, path, fsync=impl == "save_fsync")
        fn = functools.partial(load_checkpoint, path, map_location=ctx.device) if impl == "load" else save
        return Prepared(fn=fn, bytes=sum(t.numel() * t.element_size() for t in state.values()), waits=True)

    def bench(self, ctx):
        ctx.note(f"checkpoints written to {ctx.workdir} on {faults.filesystem_of(ctx.workdir)}")
        return super().bench(ctx)
