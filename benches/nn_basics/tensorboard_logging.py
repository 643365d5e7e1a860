"""3.10 Log training metrics with TensorBoard.

Compared: a training loop that logs nothing (the baseline) against one that writes its
metrics with ``torch.utils.tensorboard.SummaryWriter`` every step, and one that writes
every 10th step.

Check (tiny): an MLP trains on scikit-learn's real 8x8 digits for 3 epochs (63 steps)
while the loop logs ``train/loss`` (the batch loss, ``loss.item()``) and ``train/lr`` every
step and ``test/accuracy`` after each epoch, keeping its own list of every (tag, step,
value) it sent. After ``close()``, the event file (``events.out.tfevents.*``, TFRecord
framing of ``Event`` protobufs) is read back with TensorBoard's own reader
(``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``, no size
limit on scalars): the same tags, the same number of scalars per tag, the same steps in
order, and values equal to float32(value) exactly (a ``Summary.Value.simple_value`` is a
float32, so the float64 loss loses its low bits and nothing else), with non-decreasing wall
times. The curves in the report are drawn from the scalars read back.

Bench: time of one training step (MLP 64-256-256-10, batch 64) with no logging, with
``add_scalar(loss.item())`` each step and with it every 10th step; and ``add_scalar`` alone.

Lesson: ``add_scalar`` only serialises one protobuf and enqueues it; the rest of the cost is
the writer thread, which takes the GIL to write the record, and on CUDA the ``loss.item()``
sync. For a millisecond step, logging every step is a visible tax; every 10th step (or
accumulating the loss on the device and logging its mean) makes it vanish (the claims).
``close()`` (or ``flush()``) matters: ``add_scalar`` only puts the event on a queue
(``max_queue=10``, PyTorch docs, ``torch.utils.tensorboard.writer.SummaryWriter``) that a
writer thread drains to the file, so reading back without a close races that thread; the
mutants use a deterministic stand-in (a batching writer that never flushes its last batch).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import speedup, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import fit, standard_step
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class TBConfig:
    """A logged training run."""

    hidden: tuple[int, ...]
    """MLP hidden widths (64 inputs, 10 classes)"""
    epochs: int
    """passes over the 1,347 training digits in the check run"""
    batch_size: int = 64
    """samples per SGD step"""
    every: int = 10
    """the sparse variant logs every this many steps"""

    def label(self) -> str:
        return f"mlp=64-{'-'.join(map(str, self.hidden))}-10,bs={self.batch_size}"


def read_scalars(log_dir: Path) -> dict[str, list]:
    """Every scalar event under ``log_dir``: tag -> [ScalarEvent(wall_time, step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})  # 0 = keep all, no sampling
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()[SCALARS]}


# -- wrong versions (mutants): open_writer(self, log_dir) with a broken add_scalar ----------


def _wrapped(self, log_dir, wrap):
    w = TensorBoardLogging.open_writer(self, log_dir)
    w.add_scalar = wrap(w, w.add_scalar)
    return w


def _batching(w, real):  # batches 16 scalars, never flushes the last partial batch
    w.pending = []

    def add_scalar(tag, value, step):
        w.pending.append((tag, value, step))
        if len(w.pending) == 16:
            for args in w.pending:
                real(*args)
            w.pending.clear()

    return add_scalar


def _one_behind(w, real):  # writes each scalar when the next arrives: the last is lost
    pending = []

    def add_scalar(tag, value, step):
        if pending:
            real(*pending.pop())
        pending.append((tag, value, step))

    return add_scalar


def _float16(w, real):  # rounds more coarsely than simple_value's float32
    return lambda tag, value, step: real(tag, float(torch.tensor(value, dtype=torch.float16)), step)


@task("nn_basics.tensorboard_logging", seed="3.10", title="log training metrics with TensorBoard")
class TensorBoardLogging(Comparison):
    __doc__ = __doc__
    requires = ("tensorboard",)
    variants = ("no_logging", "every_step", "every_10_steps")
    sizes = {
        "tiny": TBConfig(hidden=(32,), epochs=3),
        "cpu": TBConfig(hidden=(256, 256), epochs=3),
        "gpu": TBConfig(hidden=(2048, 2048), epochs=3, batch_size=512),
    }
    claims = (
        time_ratio("every_10_steps", to="no_logging", at_most=1.1, text="logging every 10th step adds <= 10 %"),
        speedup("every_10_steps", over="every_step", at_least=1.05, text="every 10th step >= 5 % faster than every"),
    )
    mutants = tuple(
        Mutant(name, what, {"open_writer": lambda self, d, wrap=wrap: _wrapped(self, d, wrap)}, match=match)
        for name, what, wrap, match in (
            ("unflushed_last_batch", "a batching writer never flushes its tail", _batching, "scalars read back"),
            ("drops_last_scalar", "the final add_scalar is swallowed", _one_behind, "scalars read back"),
            ("writes_float16", "values rounded to float16", _float16, "same values"),
        )
    )

    # the writer's life cycle: tests replace these with planted bugs
    def open_writer(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(log_dir))

    def close_writer(self, writer) -> None:
        writer.close()  # flushes the queue to disk

    def model(self, cfg: TBConfig, ctx):
        torch.manual_seed(ctx.rng_seed)
        return MLP(MLPConfig(in_features=64, hidden=cfg.hidden, out_features=10)).to(ctx.device, ctx.dtype)

    def data(self, ctx):
        x, y, xt, yt = digits_split(0.25, seed=ctx.rng_seed, dtype=ctx.dtype)  # (N, 64) in [0, 1]
        return (x.to(ctx.device), y.to(ctx.device)), (xt.to(ctx.device), yt.to(ctx.device))

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        train, test = self.data(ctx)
        model = self.model(cfg, ctx)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        log_dir = ctx.workdir / "tb-check"
        writer = self.open_writer(log_dir)
        sent: dict[str, list[tuple[int, float]]] = {}
        counter = itertools.count(1)

        def add(tag: str, value: float, step: int) -> None:
            writer.add_scalar(tag, value, step)
            sent.setdefault(tag, []).append((step, value))

        def logged_step(model, optimizer, x, y, loss_fn):
            step = next(counter)
            add("train/lr", optimizer.param_groups[0]["lr"], step)
            loss = standard_step(model, optimizer, x, y, loss_fn)
            add("train/loss", loss.item(), step)
            return loss

        kw = {"batch_size": cfg.batch_size, "epochs": cfg.epochs, "eval_data": test, "seed": ctx.rng_seed}
        log = fit(model, opt, train, step_fn=logged_step, **kw)
        for step, acc in zip(log.eval_steps, log.eval_accuracy):
            add("test/accuracy", acc, step)
        self.close_writer(writer)

        files = sorted(log_dir.glob("events.out.tfevents.*"))
        ctx.expect(
            len(files) == 1,
            f"expected one event file in {log_dir}, found {[f.name for f in files]}",
            name="one event file written",
        )
        got = read_scalars(log_dir)
        ctx.expect(
            sorted(got) == sorted(sent),
            f"tags read back {sorted(got)} != tags written {sorted(sent)}",
            name="same tags",
        )
        for tag, pairs in sent.items():
            events = got[tag]
            ctx.expect(
                len(events) == len(pairs),
                f"{tag}: {len(events)} scalars read back, {len(pairs)} written "
                f"(last written step {pairs[-1][0]}, last read {events[-1].step if events else None})",
                name="same number of scalars per tag",
            )
            ctx.expect(
                [e.step for e in events] == [s for s, _ in pairs], f"{tag}: steps differ", name="same steps in order"
            )
            # simple_value is float32: compare with the float32 rounding of what was sent, exactly
            ctx.assert_close(
                torch.tensor([e.value for e in events], dtype=torch.float32),
                torch.tensor([v for _, v in pairs], dtype=torch.float32),
                name="same values (float32, exact)",
                where=tag,
                rtol=0,
                atol=0,
            )
            walls = [e.wall_time for e in events]
            ctx.expect(walls == sorted(walls), f"{tag}: wall times go backwards", name="wall times non-decreasing")
            steps, values = [e.step for e in events], [e.value for e in events]
            ctx.curve(tag, steps, values, y_label=tag, series="read back from the event file")
        ctx.expect(log.losses[-1] < 0.5 * log.losses[0], "the logged run did not train", name="run trains")

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: TBConfig) -> Prepared:
        (x, y), _ = self.data(ctx)
        xb, yb = x[: config.batch_size], y[: config.batch_size]
        model = self.model(config, ctx)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if impl == "no_logging":
            fn = lambda: standard_step(model, opt, xb, yb, F.cross_entropy)  # noqa: E731 (named for reading)
            return Prepared(fn=fn, items=config.batch_size, item_unit="samples")
        writer = self.open_writer(ctx.workdir / f"tb-{impl}")
        every = 1 if impl == "every_step" else config.every
        counter = itertools.count()

        def step():
            i = next(counter)
            loss = standard_step(model, opt, xb, yb, F.cross_entropy)
            if i % every == 0:
                writer.add_scalar("train/loss", loss.item(), i)  # .item() waits for the device
            return loss

        return Prepared(
            fn=step, items=config.batch_size, item_unit="samples", teardown=lambda: self.close_writer(writer)
        )

    def bench(self, ctx) -> None:
        super().bench(ctx)
        writer = self.open_writer(ctx.workdir / "tb-add-scalar")
        counter = itertools.count()
        try:
            ctx.measure("add_scalar_only", lambda: writer.add_scalar("x", 0.5, next(counter)), config=ctx.configs[0])
        finally:
            self.close_writer(writer)
