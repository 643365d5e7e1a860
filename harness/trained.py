"""The training half of the contract: variant builders, a shared budget, a fair comparison.

A comparison task that trains declares one builder per variant with :func:`variant`; a
training task writes one ``recipe`` method. Each builder returns a :class:`Recipe` (the
model and its optimizer, optionally a step function, loss and scheduler); the task also
gives ``train_data(ctx, config)`` (held-in and held-out tensors) and, unless its config
has the usual field names, ``budget(config)`` (a :class:`Budget`). The harness then

* seeds ``torch.manual_seed(ctx.rng_seed)`` before every builder, moves the model to the
  run's device and dtype and trains it with :func:`harness.train.fit` on the same data,
  the same shuffling seed and the same budget (:func:`run_variants`);
* checks that the comparison was fair (:func:`check_fair`): identical initial parameters
  (when the variants share their parameter shapes and ``same_init`` is left True), the
  same number of steps and samples, and the same data stream (a digest of the batch
  order that :func:`~harness.train.fit` keeps);
* records every run's curves (one line per variant), metrics prefixed ``<variant>.``,
  and on bench a comparison table; then times one training step per variant.

The task keeps what is particular to it: the builders, ``properties(ctx, runs)`` (its
own checks on the ``tiny`` preset) and ``summarize(ctx, runs)`` (the metrics its claims
read, after check and bench alike). ``train_variant`` is the one place a variant is
trained, so a mutant can make one variant unfair (another seed, a shorter budget) and
the fairness check must catch it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.contract import ImplSpec, Prepared
from harness.train import StepFn, TrainLog, fit, standard_step

if TYPE_CHECKING:
    from harness.context import Context

#: (x (N, ...), y (N,)) tensors, on any device (the harness moves them to the run's).
Split = tuple[torch.Tensor, torch.Tensor]


@dataclasses.dataclass
class Recipe:
    """What a variant's builder returns: a model and how one step trains it.

    Attributes:
        model: the network, freshly built (the harness seeded the global RNG before the
            builder ran and moves it to the run's device and dtype).
        optimizer: an optimizer over ``model``'s parameters, or a factory ``params ->
            optimizer`` (called after the move).
        step_fn: one optimizer step (``harness.train.standard_step`` signature); replace
            it for accumulation, clipping, AMP.
        loss_fn: ``loss_fn(output, y)`` and ``loss_fn(output, y, reduction="sum")``.
        scheduler: ``optimizer -> LR scheduler`` stepped once per step, or None.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer]
    step_fn: StepFn = standard_step
    loss_fn: Callable = F.cross_entropy
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget every variant gets (the fairness check compares it).

    Attributes:
        batch_size: samples per optimizer step.
        epochs: passes over the training split; ``max_steps`` stops earlier.
        max_steps: optimizer steps at most, or None.
        eval_every: steps between held-out evaluations (None: once per epoch).
        target_accuracy: held-out accuracy in (0, 1] for time-to-target, or None.
    """

    batch_size: int
    epochs: int = 1
    max_steps: int | None = None
    eval_every: int | None = None
    target_accuracy: float | None = None


@dataclasses.dataclass
class Trained:
    """One variant's training run.

    Attributes:
        name: the variant.
        init: every initial parameter, flattened (float64, CPU), in ``parameters()`` order.
        shapes: the parameters' shapes (the init comparison needs equal ones).
        log: what :func:`harness.train.fit` measured (curves, samples/s, time to target).
        model: the trained model (for the task's own properties).
        data_digest: SHA-1 of the training tensors' bytes and of the batch order (the
            fairness check's "same data stream").
        config: the config it was trained on.
    """

    name: str
    init: torch.Tensor
    shapes: tuple[tuple[int, ...], ...]
    log: TrainLog
    model: nn.Module
    data_digest: str = ""
    config: Any = None


def variant(
    fn: Callable | None = None, *, baseline: bool = False, requires: Sequence[str] = (), name: str | None = None
):
    """Mark a comparison-task method ``(self, ctx, config) -> Recipe`` as a variant's builder.

    Variants run in definition order; the first is the baseline unless one says
    ``baseline=True``. ``requires`` names capabilities the variant needs.
    """

    def mark(f: Callable) -> Callable:
        f._drills_impl = ImplSpec(  # type: ignore[attr-defined]  # a marker attribute on the function
            name=name or f.__name__, baseline=baseline, requires=tuple(requires), method=f.__name__
        )
        f._drills_variant = True  # type: ignore[attr-defined]  # a builder, not an operator impl
        return f

    return mark(fn) if fn is not None else mark


def default_budget(config: Any) -> Budget:
    """A :class:`Budget` read from the config's usual fields.

    ``batch_size`` (or ``batch``), ``epochs``, ``steps`` (or ``max_steps``), ``eval_every``
    and ``target_accuracy``; a config with ``steps`` but no ``epochs`` gets as many epochs
    as the steps need.

    Raises:
        ValueError: the config has no batch size; write ``budget(config)`` instead.
    """
    batch = getattr(config, "batch_size", getattr(config, "batch", None))
    if batch is None:
        raise ValueError(f"{type(config).__name__} has no batch_size field: define budget(config) on the task")
    steps = getattr(config, "steps", getattr(config, "max_steps", None))
    epochs = getattr(config, "epochs", None)
    return Budget(
        batch_size=int(batch),
        epochs=int(epochs) if epochs is not None else (1 << 30 if steps else 1),
        max_steps=steps,
        eval_every=getattr(config, "eval_every", None),
        target_accuracy=getattr(config, "target_accuracy", None),
    )


def _on_device(ctx: Context, split: Split) -> Split:
    x, y = split
    x = x.to(ctx.device, ctx.dtype) if x.is_floating_point() else x.to(ctx.device)
    return x, y.to(ctx.device)


def build(task: Any, ctx: Context, method: str, config: Any) -> tuple[Recipe, torch.optim.Optimizer]:
    """Seed, call the builder ``method``, move its model to the run's device; (recipe, optimizer)."""
    torch.manual_seed(ctx.rng_seed)
    recipe = getattr(task, method)(ctx, config)
    if not isinstance(recipe, Recipe):
        raise TypeError(
            f"{task.id}: builder {method}() must return harness.trained.Recipe, got {type(recipe).__name__}"
        )
    recipe.model.to(ctx.device, ctx.dtype)  # in place: an optimizer built already keeps its parameters
    opt = recipe.optimizer
    if not isinstance(opt, torch.optim.Optimizer):
        opt = opt(recipe.model.parameters())
    return recipe, opt


def train_recipe(
    ctx: Context, name: str, recipe: Recipe, opt: torch.optim.Optimizer, data: tuple[Split, Split], budget: Budget
) -> Trained:
    """Train one recipe with :func:`harness.train.fit` on ``data`` = (train, held out) within ``budget``."""
    params = list(recipe.model.parameters())
    init = torch.cat([p.detach().reshape(-1).double().cpu() for p in params]) if params else torch.zeros(0)
    log = fit(
        recipe.model,
        opt,
        data[0],
        batch_size=budget.batch_size,
        epochs=budget.epochs,
        max_steps=budget.max_steps,
        eval_data=data[1],
        eval_every=budget.eval_every,
        target_accuracy=budget.target_accuracy,
        loss_fn=recipe.loss_fn,
        scheduler=recipe.scheduler(opt) if recipe.scheduler is not None else None,
        step_fn=recipe.step_fn,
        seed=ctx.rng_seed,
    )
    digest = hashlib.sha1(log.data_digest.encode())
    for t in data[0]:
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return Trained(name, init, tuple(tuple(p.shape) for p in params), log, recipe.model, digest.hexdigest())


def load_data(task: Any, ctx: Context, config: Any) -> tuple[Split, Split]:
    """The task's (train, held out) splits on the run's device (floating inputs in its dtype)."""
    train, held_out = task.train_data(ctx, config)
    return _on_device(ctx, train), _on_device(ctx, held_out)


def train_one(task: Any, ctx: Context, method: str, name: str, config: Any, data=None) -> Trained:
    """Build with ``method``, train through ``task.train_variant`` on the task's data and budget."""
    data = data if data is not None else load_data(task, ctx, config)
    recipe, opt = build(task, ctx, method, config)
    run = task.train_variant(ctx, name, recipe, opt, data, task.budget(config))
    run.config = config
    return run


def has_builders(cls: Any) -> bool:
    """True when the task declares its variants with :func:`variant` builders."""
    return any(getattr(getattr(cls, str(s.method), None), "_drills_variant", False) for s in cls.implementations())


def run_variants(task: Any, ctx: Context, config: Any) -> dict[str, Trained]:
    """Every available variant trained on the same seed, data and budget: name -> run."""
    data = load_data(task, ctx, config)
    return {s.name: train_one(task, ctx, str(s.method), s.name, config, data) for s in ctx.implementations(task)}


def check_fair(ctx: Context, runs: dict[str, Trained], *, same_init: bool = True) -> None:
    """Expect every run to match the first in budget and data stream, and the first run with its
    parameter shapes in initial weights (variants built differently have nothing to compare)."""
    first, *rest = runs.values()
    for r in rest:
        where = f"{r.name} vs {first.name}"
        twin = next(t for t in runs.values() if t.shapes == r.shapes)  # the first run built like r
        ctx.expect(
            len(r.log.steps) == len(first.log.steps) and r.log.samples == first.log.samples,
            f"{where}: {len(r.log.steps)} steps / {r.log.samples} samples against "
            f"{len(first.log.steps)} / {first.log.samples}: not the same budget",
            name="same budget",
        )
        ctx.expect(
            r.data_digest == first.data_digest,
            f"{where}: other samples or another batch order: not the same data stream",
            name="same data stream",
        )
        if same_init and twin is not r:
            ctx.expect(
                torch.equal(r.init, twin.init),
                f"{r.name} vs {twin.name}: initial weights differ (max gap "
                f"{float((r.init - twin.init).abs().max()):.2e}): not the same seed",
                name="same initial weights",
            )


def expect_learns(
    ctx: Context, run: Trained, *, ratio: float = 0.75, window: int = 10, name: str = "every run learns"
) -> None:
    """Expect the mean loss of the last ``window`` steps below ``ratio`` x that of the first ``window``
    (``window=1, ratio=0.5``: the last step's loss at most half the first's); ``name`` names the check."""
    losses = run.log.losses
    w = max(1, min(window, len(losses) // 2))
    first, last = sum(losses[:w]) / w, sum(losses[-w:]) / w
    ctx.expect(
        last < ratio * first,
        f"{run.name}: loss {first:.3f} -> {last:.3f} over {len(losses)} steps is not below {ratio} x the start",
        name=name,
    )


def expect_accuracy(ctx: Context, run: Trained, floor: float, *, name: str, why: str = "") -> None:
    """Expect ``run``'s final held-out accuracy (in [0, 1]) >= ``floor``; ``why`` ends the failure message.

    The message names the run unless it is a training task's one run (``train_step``).
    """
    acc = run.log.final_accuracy
    who = "" if run.name == "train_step" else f"{run.name}: "
    msg = f"{who}test accuracy {acc:.3f} < {floor} after {len(run.log.steps)} steps{why}"
    ctx.expect(acc >= floor, msg, name=name)


def epochs_to_accuracy(run: Trained) -> float | None:
    """Epochs (fractional) until the held-out accuracy first reached the budget's target; None
    when it never did. Steps per epoch are read as steps / completed epochs, so this holds for
    budgets of whole epochs (a ``max_steps`` cut mid-epoch would skew it)."""
    log = run.log
    if log.steps_to_accuracy is None or not log.epoch_samples_per_s:
        return None
    return log.steps_to_accuracy / (len(log.steps) / len(log.epoch_samples_per_s))


def forward_prepared(model: nn.Module, x: torch.Tensor, unit: str = "samples") -> Prepared:
    """What an evaluation-throughput timer runs: ``model`` (put in eval mode) on ``x`` (N, ...)
    under ``torch.no_grad()``; N items of ``unit`` per call."""
    model.eval()
    return Prepared(fn=torch.no_grad()(lambda: model(x)), items=x.shape[0], item_unit=unit)


def comparison_rows(runs: dict[str, Trained]) -> list[dict[str, Any]]:
    """One row per run: steps, final loss and accuracy, samples/s, training and target time."""

    def r4(v: float | None) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(f"{v:.4g}")

    return [
        {
            "variant": name,
            "steps": len(r.log.steps),
            "final_loss": r4(r.log.losses[-1] if r.log.losses else None),
            "final_accuracy": r4(r.log.final_accuracy),
            "samples_per_s": r4(r.log.samples_per_s),
            "train_time_s": r4(r.log.train_time_s),
            "time_to_target_s": r4(r.log.time_to_accuracy_s),
        }
        for name, r in runs.items()
    ]


def step_prepared(task: Any, ctx: Context, method: str, config: Any) -> Prepared:
    """One training step of the builder's recipe on the first batch: what the timer runs."""
    (x, y), _ = task.train_data(ctx, config)
    b = task.budget(config).batch_size
    xb, yb = _on_device(ctx, (x[:b], y[:b]))
    recipe, opt = build(task, ctx, method, config)
    model, step, loss_fn = recipe.model, recipe.step_fn, recipe.loss_fn
    step(model, opt, xb, yb, loss_fn)  # optimizer state exists from here on: time the steady state
    return Prepared(fn=lambda: step(model, opt, xb, yb, loss_fn), items=xb.shape[0], item_unit="samples")
