"""A small training loop for training-run and comparison tasks, and what it records.

:func:`fit` runs epochs (or a step budget) of mini-batch training over tensors that
fit in memory, evaluates on held-out data, and returns a :class:`TrainLog`:
per-step loss and learning rate, per-evaluation accuracy, samples/s, and the training
time to a target accuracy. ``TrainLog.record(ctx)`` writes it as curves and metrics.

Timing: training time excludes evaluation (the clock stops, after a device
synchronize, around each evaluation), so ``samples_per_s`` and ``time_to_accuracy_s``
are about training alone. Losses stay on the device until an evaluation point
so the loop does not synchronize every step (``loss.item()`` would on CUDA).

:func:`peak_memory_mb` measures the peak of tensor memory a call allocates:
``torch.cuda.max_memory_allocated`` on CUDA; on CPU the sum over time of the
allocation and free events recorded by ``torch.profiler`` with ``profile_memory=True``
(process RSS would not do: glibc keeps freed pages mapped, so RSS lags the allocator).

:func:`record_samples` stores timings taken elsewhere (inside worker processes) in the
same row format as ``ctx.measure``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.timing import Measurement

if TYPE_CHECKING:
    from harness.context import Context

#: step_fn(model, optimizer, x, y, loss_fn) -> detached scalar loss of the batch.
StepFn = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, Callable], torch.Tensor]


def standard_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable = F.cross_entropy,
) -> torch.Tensor:
    """One optimizer step on batch ``x`` (N, ...), ``y`` (N,): zero grads, forward, backward, step."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def transformed_step(transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> StepFn:
    """A :data:`StepFn`: :func:`standard_step` on ``transform(x, y)`` -> (x', y') instead of
    the batch itself (a batch augmentation, noise injection); ``transform`` draws from its own
    generator, so the harness's batch order is untouched."""

    def step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable):
        return standard_step(model, optimizer, *transform(x, y), loss_fn)

    return step


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2048, loss_fn: Callable = F.cross_entropy
) -> tuple[float, float]:
    """(accuracy in [0, 1], mean loss) of ``model`` on ``x`` (N, ...), labels ``y`` (N,) int64.

    The model is put in eval mode and returned to the mode it was in.
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"evaluate: need N >= 1 inputs and N labels, got {x.shape[0]} and {y.shape[0]}")
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], batch_size):
        out = model(x[i : i + batch_size])  # (b, classes)
        yb = y[i : i + batch_size]
        correct += (out.argmax(-1) == yb).sum()
        total_loss += loss_fn(out, yb, reduction="sum").double()
    model.train(was_training)
    n = x.shape[0]
    return correct.item() / n, total_loss.item() / n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass
class TrainLog:
    """What :func:`fit` measured. Times in seconds, accuracies in [0, 1].

    Attributes:
        steps, losses, lrs: per optimizer step (1-based step number, batch loss, lr of group 0).
        eval_steps, eval_accuracy, eval_loss: at each evaluation (after that many steps).
        eval_time_s: training seconds elapsed at each evaluation.
        epoch_samples_per_s: training throughput of each completed epoch.
        train_time_s: total training seconds (evaluation excluded).
        samples: training samples processed.
        target_accuracy: the target given to :func:`fit`, or None.
        time_to_accuracy_s / steps_to_accuracy: at the first evaluation reaching the
            target; None when it was never reached.
        data_digest: SHA-1 of the sample indices of every step in order (two runs with
            equal digests saw the same data stream; ``harness.trained.check_fair``).
    """

    steps: list[int] = dataclasses.field(default_factory=list)
    losses: list[float] = dataclasses.field(default_factory=list)
    lrs: list[float] = dataclasses.field(default_factory=list)
    eval_steps: list[int] = dataclasses.field(default_factory=list)
    eval_accuracy: list[float] = dataclasses.field(default_factory=list)
    eval_loss: list[float] = dataclasses.field(default_factory=list)
    eval_time_s: list[float] = dataclasses.field(default_factory=list)
    epoch_samples_per_s: list[float] = dataclasses.field(default_factory=list)
    train_time_s: float = 0.0
    samples: int = 0
    target_accuracy: float | None = None
    time_to_accuracy_s: float | None = None
    steps_to_accuracy: int | None = None
    data_digest: str = ""

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_time_s if self.train_time_s > 0 else float("nan")

    @property
    def final_accuracy(self) -> float:
        return self.eval_accuracy[-1] if self.eval_accuracy else float("nan")

    @property
    def best_accuracy(self) -> float:
        return max(self.eval_accuracy) if self.eval_accuracy else float("nan")

    def record(self, ctx: Context, *, series: str | None = None, prefix: str = "") -> None:
        """Write curves (loss, lr, accuracy, throughput) and metrics into ``ctx``.

        Curves are named ``train loss``, ``learning rate``, ``test accuracy`` and
        ``samples/s per epoch``; ``series`` names this run's line in each (so variants
        share charts). Metrics get ``prefix`` (e.g. ``"full_batch."``).
        """
        if self.steps:
            ctx.curve("train loss", self.steps, self.losses, y_label="loss", series=series)
            ctx.curve("learning rate", self.steps, self.lrs, y_label="lr", series=series)
        if self.eval_steps:
            ctx.curve("test accuracy", self.eval_steps, self.eval_accuracy, y_label="accuracy", series=series)
        if self.epoch_samples_per_s:
            ctx.curve(
                "samples/s per epoch",
                list(range(1, len(self.epoch_samples_per_s) + 1)),
                self.epoch_samples_per_s,
                x_label="epoch",
                y_label="samples/s",
                series=series,
            )
        ctx.metric(f"{prefix}samples_per_s", self.samples_per_s)
        ctx.metric(f"{prefix}train_time_s", self.train_time_s)
        if self.eval_accuracy:
            ctx.metric(f"{prefix}final_accuracy", self.final_accuracy)
        if self.losses:
            ctx.metric(f"{prefix}final_loss", self.losses[-1])
        if self.target_accuracy is not None:
            ctx.metric(f"{prefix}target_accuracy", self.target_accuracy)
            # NaN (recorded as null) when the target was never reached
            ctx.metric(
                f"{prefix}time_to_accuracy_s",
                self.time_to_accuracy_s if self.time_to_accuracy_s is not None else float("nan"),
            )
            ctx.metric(
                f"{prefix}steps_to_accuracy",
                self.steps_to_accuracy if self.steps_to_accuracy is not None else float("nan"),
            )


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    batch_size: int,
    epochs: int = 1,
    max_steps: int | None = None,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int | None = None,
    target_accuracy: float | None = None,
    stop_at_target: bool = False,
    loss_fn: Callable = F.cross_entropy,
    scheduler: Any = None,
    step_fn: StepFn = standard_step,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
) -> TrainLog:
    """Train ``model`` with mini-batches of ``train`` = (x (N, ...), y (N,)) on x's device.

    Args:
        batch_size: samples per optimizer step.
        epochs: passes over ``train``; ``max_steps`` stops earlier when reached.
        eval_data: (x, y) held out; evaluated every ``eval_every`` steps (default: once per
            epoch) and after the last step.
        target_accuracy: accuracy in (0, 1] for time-to-accuracy; with ``stop_at_target``
            training stops at the first evaluation that reaches it.
        scheduler: an LR scheduler stepped once per optimizer step, or None.
        step_fn: one optimizer step (see :func:`standard_step`); replace it for gradient
            accumulation, clipping, AMP.
        seed: seeds the shuffling generator (the model's init is the caller's business).
        drop_last: skip a last partial batch (keeps every step's batch the same size).

    Raises:
        ValueError: empty data, x/y length mismatch, batch_size < 1 or > N with drop_last,
            a target outside (0, 1].
    """
    x, y = train
    n = x.shape[0]
    if n == 0 or y.shape[0] != n:
        raise ValueError(f"fit: need N >= 1 samples and N labels, got {n} inputs and {y.shape[0]} labels")
    if batch_size < 1 or (drop_last and batch_size > n):
        raise ValueError(f"fit: batch_size must be in 1..{n} (samples), got {batch_size}")
    if target_accuracy is not None and not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"fit: target_accuracy must be in (0, 1], got {target_accuracy}")
    device = x.device
    g = torch.Generator().manual_seed(seed)
    log = TrainLog(target_accuracy=target_accuracy)
    pending: list[torch.Tensor] = []  # losses not yet copied to the host
    digest = hashlib.sha1()  # of the indices actually consumed, hashed on the host once per epoch
    step = 0
    model.train()

    def flush_losses() -> None:
        if pending:
            log.losses.extend(torch.stack(pending).float().cpu().tolist())
            pending.clear()

    def run_eval() -> bool:
        """Evaluate (clock stopped by the caller); True when training should stop."""
        flush_losses()
        assert eval_data is not None  # run_eval is only called with held-out data
        acc, loss = evaluate(model, *eval_data, loss_fn=loss_fn)
        log.eval_steps.append(step)
        log.eval_accuracy.append(acc)
        log.eval_loss.append(loss)
        log.eval_time_s.append(log.train_time_s)
        if target_accuracy is not None and log.time_to_accuracy_s is None and acc >= target_accuracy:
            log.time_to_accuracy_s, log.steps_to_accuracy = log.train_time_s, step
            return stop_at_target
        return False

    stop = False
    for _ in range(epochs):
        order_cpu = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        order = order_cpu.to(device)
        ends = range(batch_size, n + 1, batch_size) if drop_last else range(batch_size, n + batch_size, batch_size)
        epoch_samples, epoch_time = 0, 0.0
        _sync(device)
        t0 = time.perf_counter()
        for end in ends:
            idx = order[end - batch_size : min(end, n)]
            xb, yb = x[idx], y[idx]
            pending.append(step_fn(model, optimizer, xb, yb, loss_fn))
            log.lrs.append(optimizer.param_groups[0]["lr"])
            if scheduler is not None:
                scheduler.step()
            step += 1
            log.steps.append(step)
            epoch_samples += idx.shape[0]
            last = max_steps is not None and step >= max_steps
            if eval_data is not None and eval_every and step % eval_every == 0 and not last:
                _sync(device)
                dt = time.perf_counter() - t0
                epoch_time += dt
                log.train_time_s += dt
                stop = run_eval()
                t0 = time.perf_counter()
            if last or stop:
                stop = True
                break
        _sync(device)
        dt = time.perf_counter() - t0
        epoch_time += dt
        log.train_time_s += dt
        log.samples += epoch_samples
        digest.update(order_cpu[:epoch_samples].numpy().tobytes())
        if epoch_samples:
            log.epoch_samples_per_s.append(epoch_samples / epoch_time if epoch_time > 0 else math.nan)
        if eval_data is not None and not eval_every and not stop:
            stop = run_eval()
        if stop:
            break
    if eval_data is not None and (not log.eval_steps or log.eval_steps[-1] != step):
        run_eval()
    flush_losses()
    log.data_digest = digest.hexdigest()
    return log


#: stderr lines the CPU profiler writes on every start/stop, and c10's note that a block
#: freed during the profile was allocated before it (such frees are left out, see below)
_PROFILER_NOISE = ("USDT:", "Memory block of unknown size was allocated before the profiling started")


@contextlib.contextmanager
def _quiet_profiler_stderr():
    """Capture file descriptor 2 (C++ code writes there directly) and pass on all but
    the profiler's own noise once the block ends."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): leave it alone
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [
                line
                for line in tmp.read().decode(errors="replace").splitlines(keepends=True)
                if not any(n in line for n in _PROFILER_NOISE)
            ]
            if kept:
                sys.stderr.write("".join(kept))


def peak_memory_mb(fn: Callable[[], Any], device: torch.device | str) -> float:
    """Peak tensor memory (MB, 10**6 bytes) that ``fn()`` holds above what was live before it.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
    bytes allocated at the start. CPU: a running sum over the allocation (+) and free (-)
    events that ``torch.profiler`` records with ``profile_memory=True``, in time order;
    its maximum is the peak. Both count the allocator's tensor bytes, not process RSS.

    On CPU the profiler sees no free of a block allocated before it started (a ``.grad``
    released by ``zero_grad(set_to_none=True)``, say), so the CPU figure is the peak of the
    bytes *allocated during* ``fn`` and alive together, never reduced by older tensors that
    ``fn`` frees; on CUDA such frees do lower the figure.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - start) / 1e6
    from torch.profiler import ProfilerActivity, profile

    with _quiet_profiler_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # "[memory]" events carry the signed byte count of one allocation or free
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak / 1e6


def record_samples(
    ctx: Context,
    impl: str,
    samples_ms: Sequence[float],
    *,
    config: Any = None,
    items: float | None = None,
    item_unit: str = "samples",
    mode: str = "external",
    **extra: float,
) -> Measurement:
    """Record per-call times measured elsewhere (e.g. inside worker processes) as a measurement.

    The row has the fields ``ctx.measure`` writes (median_ms, iqr_ms, samples, ...), so
    reports and speedups treat it alike; ``mode`` says where the clock ran.

    Raises:
        ValueError: no samples.
    """
    if not samples_ms:
        raise ValueError(f"record_samples: no samples for {impl!r}")
    m = Measurement(samples_ms=[float(s) for s in samples_ms], number_per_sample=1, mode=mode)
    ctx.record_measurement(impl, m, config=config, items=items, item_unit=item_unit, **extra)
    return m
