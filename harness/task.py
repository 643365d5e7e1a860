"""The task contract: four kinds of task share one interface.

Every task class has ``id``, ``seed``, ``title``, ``area`` (set by
:func:`harness.registry.task`), ``requires`` (capabilities), ``sizes`` (named presets
``tiny``/``cpu``/``gpu``, each one config or a list of configs for a sweep) and a
docstring: what is compared, why it matters, the lesson and the figures measured.
The harness passes device, dtype and the RNG seed; a task never picks them itself.

Two methods carry the work, both given a :class:`harness.context.Context`:

* ``check(ctx)``: correctness. Fails by raising ``CheckFailed`` (through
  ``ctx.assert_close``/``ctx.expect``), skips by ``ctx.require``.
* ``prepare(ctx, impl, config)``: builds inputs and returns a :class:`Prepared` whose
  zero-argument ``fn`` is what gets timed, so allocation and compilation stay outside
  the timed region. The default ``bench(ctx)`` times every implementation on every
  config of the size preset and returns name -> measurement (so an override derives a
  ratio after ``super().bench(ctx)``); the pytest and asv front ends call ``prepare``.

The kinds:

1. :class:`Operator`: ``inputs``/``reference``/implementations marked with :func:`impl`
   (exactly one ``baseline=True``), ``flops``/``bytes``. ``check`` is generic: 3 seeded
   trials per config, every implementation against the reference with the guards.
2. :class:`TrainingRun`: trains a model. Carried by the harness when the task writes
   ``recipe(ctx, config) -> harness.trained.Recipe`` (model + optimizer) and
   ``train_data(ctx, config)``: the harness trains with ``harness.train.fit``, records
   curves, samples/s and time to ``target_accuracy``, calls ``properties(ctx, run)`` and
   ``summarize(ctx, run)``, and times ``train_step`` (several bench configs: one series
   and metric prefix per ``run_name(config)``). Else the task writes ``check`` and
   ``bench`` itself.
3. :class:`Comparison`: variants run on the same seed and budget, plotted together.
   Carried by the harness when each variant is a builder::

       @variant
       def adam(self, ctx, config) -> Recipe:
           return Recipe(MLP(...), lambda params: torch.optim.Adam(params, lr=config.lr))

   The harness seeds before every builder, trains all on the same data stream and
   ``budget(config)`` (default: the config's ``batch_size``/``epochs``/``steps``/
   ``eval_every``/``target_accuracy``), checks ``same budget``, ``same data stream`` and
   ``same initial weights``, records curves (a series per variant), ``<variant>.*``
   metrics and a comparison table (``row(run)`` adds columns), then calls
   ``properties(ctx, runs)`` (check) and ``summarize(ctx, runs)`` (check and bench) and
   times one step per variant. ``train_variant`` trains one variant, so a mutant can make
   one run unfair. Hand-written comparisons (``variants`` names, own ``check``/``bench``)
   keep working. See :mod:`harness.trained`.
4. :class:`System`: a real server, exporter or process group started and stopped by
   the task itself.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from harness.checks import Tolerance
from harness.claims import Claim
from harness.contract import (
    KINDS,
    SIZE_PRESETS,
    ImplSpec,
    Prepared,
    RegistryError,
    config_label,
    default_size,
    impl,
)
from harness.mutants import Mutant

if TYPE_CHECKING:
    from harness.context import Context

# task files and tests import the vocabulary from here as well as from harness.contract
__all__ = [
    "KINDS",
    "SIZE_PRESETS",
    "Claim",
    "Comparison",
    "ImplSpec",
    "Mutant",
    "Operator",
    "Prepared",
    "RegistryError",
    "System",
    "Task",
    "TrainingRun",
    "config_label",
    "default_size",
    "impl",
]


class Task:
    """Base of every task. See the module docstring for the contract."""

    id: ClassVar[str]
    seed: ClassVar[str]
    title: ClassVar[str]
    area: ClassVar[str]
    kind: ClassVar[str] = ""
    #: Capabilities needed by the whole task (``harness.capabilities.DESCRIPTIONS``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Size presets: name -> config or list of configs (a sweep). ``tiny`` is required.
    sizes: ClassVar[dict[str, Any]] = {}
    #: dtypes the check runs in (each one a full check).
    check_dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.float32,)
    #: dtype the benchmark runs in, by device type.
    bench_dtypes: ClassVar[dict[str, torch.dtype]] = {"cpu": torch.float32, "cuda": torch.float32}
    #: Per-dtype tolerance overrides; loosening one needs a comment saying why.
    tolerances: ClassVar[dict[torch.dtype, Tolerance]] = {}
    #: Wall-clock limit per mode in seconds; None takes the runner's default.
    time_limit_s: ClassVar[dict[str, float] | None] = None
    #: Variant names for non-operator kinds (first is the baseline unless ``baseline_variant``).
    variants: ClassVar[tuple[str, ...]] = ()
    baseline_variant: ClassVar[str | None] = None
    #: Whether ``drills gpu-check`` runs this task; None derives it from the capabilities
    #: the task and its implementations need. Set True for tasks whose GPU part sits
    #: behind ``ctx.require("cuda", ...)`` inside check/bench.
    gpu_check: ClassVar[bool | None] = None
    #: The lesson's quantitative statements (``harness.claims``), evaluated on every run.
    claims: ClassVar[Sequence[Claim]] = ()
    #: Wrong implementations the check must reject (``harness.mutants``).
    mutants: ClassVar[Sequence[Mutant]] = ()
    #: Scalars the task records with ``ctx.metric``: name -> meaning with unit. A metric
    #: claim may only read a declared metric, so a rename cannot orphan it.
    metrics: ClassVar[dict[str, str]] = {}

    # -- static description -------------------------------------------------------
    @classmethod
    def implementations(cls) -> list[ImplSpec]:
        """Implementations marked with :func:`impl`, else one per entry of ``variants``."""
        specs = []
        for _, member in inspect.getmembers(cls):
            spec = getattr(member, "_drills_impl", None)
            if isinstance(spec, ImplSpec):
                specs.append(spec)
        if specs:
            # definition order, not alphabetical: the file's order is the reading order
            order = {name: i for i, name in enumerate(_definition_order(cls))}
            specs.sort(key=lambda s: order.get(s.method or "", 1 << 30))
            builders = [getattr(getattr(cls, s.method or "", None), "_drills_variant", False) for s in specs]
            if all(builders) and not any(s.baseline for s in specs):
                # variant builders (harness.trained.variant): the first is the baseline
                specs[0] = dataclasses.replace(specs[0], baseline=True)
            return specs
        base = cls.baseline_variant or (cls.variants[0] if cls.variants else None)
        return [ImplSpec(name=v, baseline=(v == base)) for v in cls.variants]

    @classmethod
    def baseline(cls) -> str | None:
        for s in cls.implementations():
            if s.baseline:
                return s.name
        return None

    @classmethod
    def uses_gpu(cls) -> bool:
        """True when some part of the task needs a GPU (what ``drills gpu-check`` runs)."""
        if cls.gpu_check is not None:
            return cls.gpu_check
        gpu_caps = {"cuda", "triton_gpu", "nccl", "tensorrt"}
        needs = set(cls.requires)
        for s in cls.implementations():
            needs |= set(s.requires) | set(s.bench_requires)
        return bool(needs & gpu_caps)

    @classmethod
    def lesson(cls) -> str:
        """The task's docstring: what is compared, why, the lesson and its figures."""
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def seed_sort_key(cls) -> tuple:
        s = cls.seed
        if s.startswith("m"):
            return (100 + int(s[1:]), 0)
        a, b = s.split(".")
        return (int(a), int(b))

    @classmethod
    def configs(cls, size: str) -> list[Any]:
        """Configs of a size preset; ``gpu`` falls back to ``cpu``, ``cpu`` to ``tiny``."""
        if size not in SIZE_PRESETS:
            raise ValueError(f"unknown size {size!r}; valid sizes: {', '.join(SIZE_PRESETS)}")
        for name in SIZE_PRESETS[SIZE_PRESETS.index(size) :: -1]:
            if name in cls.sizes:
                v = cls.sizes[name]
                return list(v) if isinstance(v, (list, tuple)) else [v]
        raise ValueError(f"{cls.id} has no size preset {size!r} nor a smaller one")

    @classmethod
    def validate(cls) -> None:
        """Static contract checks, run at registration.

        Raises:
            RegistryError: what is missing or inconsistent, naming the task.
        """
        where = f"task {cls.id} ({cls.__module__}.{cls.__qualname__})"
        if cls.kind not in KINDS:
            raise RegistryError(
                f"{where}: kind {cls.kind!r} is not one of {KINDS}; subclass Operator, "
                "TrainingRun, Comparison or System"
            )
        if "tiny" not in cls.sizes:
            raise RegistryError(f"{where}: sizes needs a 'tiny' preset (check mode runs it)")
        bad = [k for k in cls.sizes if k not in SIZE_PRESETS]
        if bad:
            raise RegistryError(f"{where}: unknown size presets {bad}; use {SIZE_PRESETS}")
        if not cls.lesson():
            raise RegistryError(f"{where}: needs a docstring (what is compared and the lesson)")
        from harness import capabilities

        for r in cls.requires:
            capabilities.missing([r])  # raises ValueError on an unknown name
        specs = cls.implementations()
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise RegistryError(f"{where}: implementation names repeat: {names}")
        if cls.kind == "operator":
            n_base = sum(s.baseline for s in specs)
            if n_base != 1:
                raise RegistryError(
                    f"{where}: an operator task needs exactly one baseline implementation, found {n_base} among {names}"
                )
        for s in specs:
            for r in s.requires + s.bench_requires:
                capabilities.missing([r])
        from harness import claims as claims_mod
        from harness import mutants as mutants_mod

        for mod in (claims_mod, mutants_mod):
            try:
                mod.validate(cls)
            except ValueError as e:
                raise RegistryError(f"{where}: {e}") from None

    # -- the work -----------------------------------------------------------------
    def check(self, ctx: Context) -> None:
        raise NotImplementedError(f"{self.id} defines no check")

    def prepare(self, ctx: Context, impl: str, config: Any) -> Prepared:
        raise NotImplementedError(f"{self.id} defines no prepare(); override bench() or add it")

    def bench(self, ctx: Context) -> Any:
        """Time every available implementation on every config of the preset.

        Returns:
            implementation name -> its ``harness.timing.Measurement`` on the last config
            (so a subclass can derive a ratio after ``super().bench(ctx)``).
        """
        times = {}
        for config in ctx.configs:
            for spec in ctx.implementations(self, bench=True):
                prepared = self.prepare(ctx, spec.name, config)
                try:
                    times[spec.name] = ctx.measure(spec.name, prepared, config=config)
                finally:
                    if prepared.teardown is not None:
                        prepared.teardown()
        return times


def measure_or_skip(task: Task, ctx: Context, impl: str, config: Any) -> Any:
    """``ctx.measure`` of ``task.prepare(ctx, impl, config)``, its teardown included, or a skipped part.

    A ``prepare`` that raises ``NotImplementedError`` (this preset, device or build cannot run
    ``impl``; the message says why) is recorded as the skipped part ``timing of <impl>`` with the
    message's first 200 characters, and nothing is timed. Any other exception propagates.

    Returns:
        the ``harness.timing.Measurement``, or None when skipped.
    """
    try:
        prepared = task.prepare(ctx, impl, config)
    except NotImplementedError as e:
        ctx.skip_part(f"timing of {impl}", str(e)[:200])
        return None
    try:
        return ctx.measure(impl, prepared, config=config)
    finally:
        if prepared.teardown is not None:
            prepared.teardown()


def _definition_order(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for n in vars(klass):
            if n not in names:
                names.append(n)
    return names


class Operator(Task):
    """An operator: a reference and implementations that must equal it.

    Subclasses define ``inputs(config, device, dtype, seed) -> tuple``,
    ``reference(*inputs)``, implementation methods marked :func:`impl`, and optionally
    ``flops(config)`` / ``bytes(config, dtype)`` and ``extra_checks(ctx)`` for
    properties beyond equality (rejects bad input, no NaN on constant input, ...).
    """

    kind = "operator"
    #: Seeded trials per config in the check (DESIGN.md: at least 3).
    trials: ClassVar[int] = 3
    #: Set True only where returning a view of an input is the point of the task.
    allow_alias: ClassVar[bool] = False
    #: Set True where a constant output is legitimate even for a varying reference.
    allow_constant: ClassVar[bool] = False

    def inputs(self, config: Any, device: torch.device, dtype: torch.dtype, seed: int) -> tuple:
        raise NotImplementedError

    def reference(self, *inputs: Any) -> Any:
        raise NotImplementedError

    def flops(self, config: Any) -> float | None:
        return None

    def bytes(self, config: Any, dtype: torch.dtype) -> float | None:
        return None

    def items(self, config: Any) -> tuple[float, str] | None:
        """(work items per call, unit) for a throughput metric such as rows/s."""
        return None

    def extra_checks(self, ctx: Context) -> None:
        """Properties beyond equality with the reference; default none."""

    def check(self, ctx: Context) -> None:
        from harness.checks import guard_no_alias, guard_not_constant, guard_not_mutated, snapshot

        for config in ctx.configs:
            for trial in range(self.trials):
                seed = ctx.rng_seed + trial
                inputs = self.inputs(config, ctx.device, ctx.dtype, seed)
                expected = self.reference(*inputs)
                for spec in ctx.implementations(self):
                    before = snapshot(inputs)
                    out = getattr(self, str(spec.method))(*inputs)()
                    ctx.sync()
                    label = f"{spec.name} [{config_label(config)}, seed {seed}]"
                    guard_not_mutated(inputs, before, name=label)
                    if not self.allow_alias:
                        guard_no_alias(out, inputs, name=label)
                    if not self.allow_constant:
                        guard_not_constant(out, expected, name=label)
                    ctx.assert_close(out, expected, name=spec.name, where=label)
        self.extra_checks(ctx)

    def prepare(self, ctx: Context, impl: str, config: Any) -> Prepared:
        spec = next(s for s in self.implementations() if s.name == impl)
        inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        fn = getattr(self, str(spec.method))(*inputs)
        items = self.items(config)
        return Prepared(
            fn=fn,
            flops=self.flops(config),
            bytes=self.bytes(config, ctx.dtype),
            items=items[0] if items else None,
            item_unit=items[1] if items else None,
        )


class _Trains(Task):
    """What training and comparison tasks share when the harness carries the training.

    A task using :mod:`harness.trained` gives ``train_data(ctx, config)`` -> ((x, y), (x, y))
    (train, held out), its builder(s) returning a :class:`harness.trained.Recipe`, and
    optionally ``budget``, ``properties`` and ``summarize``.
    """

    def train_data(self, ctx: Context, config: Any) -> tuple[Any, Any]:
        """((x (N, ...), y (N,)), (x_held_out, y_held_out)): the data every run trains on."""
        raise NotImplementedError(f"{self.id} builds its runs but defines no train_data(ctx, config)")

    def budget(self, config: Any) -> Any:
        """The :class:`harness.trained.Budget` of every run; default: read from the config's fields."""
        from harness.trained import default_budget

        return default_budget(config)

    def train_variant(self, ctx: Context, name: str, recipe: Any, opt: Any, data: Any, budget: Any) -> Any:
        """Train one built recipe on ``data`` within ``budget`` (mutants patch this to be unfair)."""
        from harness.trained import train_recipe

        return train_recipe(ctx, name, recipe, opt, data, budget)

    def properties(self, ctx: Context, runs: Any) -> None:
        """The task's own checks on the tiny preset's run(s); default none."""

    def summarize(self, ctx: Context, runs: Any) -> None:
        """Metrics the claims read, from the run(s); called after check and bench training."""


class TrainingRun(_Trains):
    """Trains a model from ``models/`` on data from ``harness.data``.

    Carried by the harness: define ``recipe(ctx, config) -> harness.trained.Recipe``,
    ``train_data`` and (unless the config has ``batch_size``/``epochs``/``steps``/
    ``eval_every``/``target_accuracy`` fields) ``budget``. The harness trains with
    ``harness.train.fit``, records curves, samples/s and time to target, then calls
    ``properties(ctx, run)`` (check) and ``summarize(ctx, run)`` (check and bench); bench
    also times ``train_step`` (one step of the recipe on one batch).

    Or by hand: ``check`` asserts properties (loss falls, an accuracy threshold, equality
    with a torch reference trajectory) on the ``tiny`` preset; ``bench`` records
    throughput, time-to-accuracy and curves (``ctx.curve``);
    ``prepare(ctx, "train_step", config)`` returns one training step for the timers.
    """

    kind = "training"
    variants = ("train_step",)

    def recipe(self, ctx: Context, config: Any) -> Any:
        raise NotImplementedError(f"{self.id} defines neither check() nor recipe(ctx, config)")

    @classmethod
    def carried(cls) -> bool:
        """True when the harness trains the task (it defines a ``recipe`` method; a task whose
        ``recipe`` is data, such as research.resnet_repro's paper recipe config, trains by hand)."""
        return inspect.isfunction(cls.recipe) and cls.recipe is not TrainingRun.recipe

    def train(self, ctx: Context, config: Any) -> Any:
        """The recipe trained on the task's data and budget: a :class:`harness.trained.Trained`."""
        from harness.trained import train_one

        return train_one(self, ctx, "recipe", "train_step", config)

    def check(self, ctx: Context) -> None:
        if not self.carried():
            super().check(ctx)
        run = self.train(ctx, ctx.configs[0])
        run.log.record(ctx)
        self.properties(ctx, run)
        self.summarize(ctx, run)

    def run_name(self, config: Any) -> str | None:
        """The series (and ``<name>.`` metric prefix) of a config's run when bench trains
        several configs; default its label."""
        return config_label(config)

    def bench(self, ctx: Context) -> Any:
        if self.carried():
            for config in ctx.configs:
                run = self.train(ctx, config)
                name = self.run_name(config) if len(ctx.configs) > 1 else None
                run.log.record(ctx, series=name, prefix=f"{name}." if name else "")
                self.summarize(ctx, run)
        return super().bench(ctx)

    def prepare(self, ctx: Context, impl: str, config: Any) -> Prepared:
        if not self.carried() or impl != "train_step":
            return super().prepare(ctx, impl, config)
        from harness.trained import step_prepared

        return step_prepared(self, ctx, "recipe", config)


class Comparison(_Trains):
    """Variants run on the same seed and budget; the report plots them together.

    Carried by the harness: one builder per variant, ``@variant def name(self, ctx,
    config) -> harness.trained.Recipe`` (definition order; the first is the baseline),
    and ``train_data``. The harness trains every variant from ``torch.manual_seed(seed)``
    on the same data stream and budget, checks that (``same budget``, ``same data
    stream``, ``same initial weights`` where the parameter shapes agree and ``same_init``
    is True), records each variant's curves as one series, its metrics as
    ``<variant>.<metric>`` and a ``comparison`` table (extra columns from ``row(run)``),
    calls ``properties(ctx, runs)`` (check; ``runs``: name -> :class:`harness.trained.Trained`)
    and ``summarize(ctx, runs)`` (check and bench); bench then times one training step per
    variant. Check and bench train on the preset's first config.

    Or by hand: ``variants`` names and ``check``/``prepare``/``bench`` written by the task.
    """

    kind = "comparison"
    #: builder variants: expect identical initial parameters where the shapes agree.
    same_init: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from harness.trained import has_builders

        if has_builders(cls):  # ``variants`` lists the builders' names, as in hand-written comparisons
            cls.variants = tuple(s.name for s in cls.implementations())

    def check(self, ctx: Context) -> None:
        from harness.trained import check_fair, has_builders

        if not has_builders(type(self)):
            super().check(ctx)
        runs = self._train_all(ctx)
        check_fair(ctx, runs, same_init=self.same_init)
        self.properties(ctx, runs)

    def bench(self, ctx: Context) -> Any:
        from harness.trained import has_builders

        if has_builders(type(self)):
            self._train_all(ctx)
        return super().bench(ctx)

    def row(self, run: Any) -> dict[str, Any]:
        """Extra columns of ``run``'s row in the comparison table; default none."""
        return {}

    def _train_all(self, ctx: Context) -> dict[str, Any]:
        """Every variant trained on the first config; curves, the comparison table, summarize."""
        from harness.trained import comparison_rows, run_variants

        runs = run_variants(self, ctx, ctx.configs[0])
        for r in runs.values():
            r.log.record(ctx, series=r.name, prefix=f"{r.name}.")
        rows = comparison_rows(runs)
        ctx.table(
            f"comparison [{config_label(ctx.configs[0])}]", [{**row, **self.row(runs[row["variant"]])} for row in rows]
        )
        self.summarize(ctx, runs)
        return runs

    def prepare(self, ctx: Context, impl: str, config: Any) -> Prepared:
        from harness.trained import has_builders, step_prepared

        if not has_builders(type(self)):
            return super().prepare(ctx, impl, config)
        spec = next(s for s in self.implementations() if s.name == impl)
        return step_prepared(self, ctx, str(spec.method), config)


class System(Task):
    """A real server, exporter or process group, started and stopped by the task."""

    kind = "system"
