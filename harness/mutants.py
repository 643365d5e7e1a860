"""Mutants: the wrong implementations a task's check must reject.

A check that cannot fail is a defect (DESIGN.md). Each task declares, next to its right
implementations, the plausible wrong ones (a transposed operand, Adam without bias
correction, a decoder that sees the future) and the harness proves that the check fails
on every one: ``drills check --mutants`` runs them on the user's machine, the report shows
the check's strength (mutants caught / declared, by name) and the tests call the same
mechanism (:func:`run_mutant`).

A mutant is a named patch of the task class: class attributes replaced in an unregistered
subclass, the way a test would plant a bug::

    mutants = (
        Mutant("drops_last_key", "the KV cache drops the newest key", {"cache_cls": DropsLastKey},
               match="KV cache"),
        replace_impl("transposed", "multiplies by B^T", "broadcast_sum",
                     lambda self, a, b: lambda: ...),          # operator tasks
        replace_call("no_eps", "divides by the raw norms", "naive", wrong.cosine_no_eps),  # a function of the inputs
    )

A mutant counts as *caught* only when the check raises :class:`harness.checks.CheckFailed`
(whose message contains ``match`` if given). A mutant that crashes the check with another
exception is *not* caught: a crash is not a verdict, and a user reading "caught" must be
able to trust that the check itself saw the bug.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import torch

from harness.checks import CheckFailed


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A wrong version of a task: class attributes of the task replaced.

    Attributes:
        name: short identifier (``snake_case``), shown in the report and in test ids.
        what: one line saying what is wrong, in the field's terms.
        patch: class attribute name -> replacement (a method, a class, a constant).
        match: text the check's failure message must contain (names the failing check).
        impl: for :func:`replace_impl` mutants, the operator implementation replaced.
    """

    name: str
    what: str
    patch: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    match: str | None = None
    impl: str | None = None
    wrong: Callable[..., Any] | None = None

    def build(self, task_cls: Any) -> type:
        """An unregistered subclass of ``task_cls`` carrying the bug.

        Raises:
            ValueError: the patch names an attribute the task does not have, or
                ``impl`` names no implementation of the task.
        """
        attrs: dict[str, Any] = {"__doc__": task_cls.__doc__, "__module__": task_cls.__module__}
        for key, value in self.patch.items():
            if not hasattr(task_cls, key):
                raise ValueError(f"mutant {self.name!r} of {task_cls.id}: the task has no attribute {key!r} to replace")
            attrs[key] = _keep_mark(getattr(task_cls, key), value)
        if self.impl is not None:
            attrs.update(_impl_patch(task_cls, self.impl, self.wrong, self.name))
        return type(f"Mutant_{task_cls.__name__}_{self.name}", (task_cls,), attrs)


def _keep_mark(old: Any, new: Any) -> Any:
    """``new`` carrying ``old``'s implementation/variant marker, so a patched variant builder
    stays a variant (``harness.trained.variant``) instead of silently leaving the comparison."""
    spec = getattr(old, "_drills_impl", None)
    if spec is None or not callable(new) or getattr(new, "_drills_impl", None) is not None:
        return new

    def marked(*args: Any, **kwargs: Any) -> Any:
        return new(*args, **kwargs)

    marked.__name__ = getattr(new, "__name__", spec.method or "patched")
    marked._drills_impl = spec  # type: ignore[attr-defined]
    marked._drills_variant = getattr(old, "_drills_variant", False)  # type: ignore[attr-defined]
    return marked


def replace_impl(
    name: str, what: str, impl_name: str, wrong: Callable[..., Callable[[], Any]], *, match: str | None = None
) -> Mutant:
    """A mutant of an operator task: implementation ``impl_name`` replaced by ``wrong``.

    ``wrong(self, *inputs)`` returns a zero-argument closure, like any implementation.
    """
    return Mutant(name, what, {}, match=match if match is not None else impl_name, impl=impl_name, wrong=wrong)


def replace_call(
    name: str, what: str, impl_name: str, wrong: Callable[..., Any], *, match: str | None = None
) -> Mutant:
    """:func:`replace_impl` for a wrong *function of the inputs*: implementation ``impl_name``
    becomes ``lambda: wrong(*inputs)`` (nothing set up outside the timed closure)."""
    return replace_impl(name, what, impl_name, lambda self, *inputs: lambda: wrong(*inputs), match=match)


def replace_functions(name: str, what: str, *, match: str | None = None, **functions: Callable[..., Any]) -> Mutant:
    """A mutant replacing function attributes of the task (``saver = staticmethod(atomic_save)``)
    with wrong plain functions, each kept a ``staticmethod`` so the task calls it unbound:
    ``replace_functions("in_place_write", "writes over the file", saver=write_in_place)``."""
    return Mutant(name, what, {attr: staticmethod(fn) for attr, fn in functions.items()}, match=match)


def tiny_changed(sizes: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """The patch ``{"sizes": {"tiny": sizes["tiny"] with changes}}`` (``dataclasses.replace``
    on a frozen config): a mutant run on the tiny preset with, e.g., ``lr=0.0`` (a model that
    must fail the learning check). The other presets are dropped: mutants run on tiny only."""
    return {"sizes": {"tiny": dataclasses.replace(sizes["tiny"], **changes)}}


def _impl_patch(task_cls: Any, impl_name: str, wrong: Callable[..., Any] | None, label: str) -> dict[str, Any]:
    from harness.task import impl

    specs = {s.name: s for s in task_cls.implementations()}
    if impl_name not in specs:
        raise ValueError(f"mutant {label!r} of {task_cls.id}: no implementation {impl_name!r}; it has {sorted(specs)}")
    if wrong is None:
        raise ValueError(f"mutant {label!r} of {task_cls.id}: replace_impl needs the wrong implementation")
    spec = specs[impl_name]

    def method(self, *inputs):
        return wrong(self, *inputs)

    method.__name__ = spec.method
    marked = impl(
        method, baseline=spec.baseline, requires=spec.requires, bench_requires=spec.bench_requires, name=spec.name
    )
    return {spec.method: marked}


def run_mutant(
    task_cls: type, mutant: Mutant, *, device: str | torch.device = "cpu", rng_seed: int = 0, size: str = "tiny"
) -> dict[str, Any]:
    """Run the task's check with ``mutant`` planted; JSON-ready verdict.

    Returns:
        ``{"name", "what", "caught": bool, "how": str}``: ``how`` is the check's failure
        message when caught, else why not (the check passed, failed for another reason,
        or crashed).
    """
    from harness.testing import run_check

    out: dict[str, Any] = {"name": mutant.name, "what": mutant.what, "caught": False, "how": ""}
    try:
        wrong = mutant.build(task_cls)
        run_check(wrong, size=size, device=str(device), rng_seed=rng_seed)
    except CheckFailed as e:
        msg = str(e)
        if mutant.match is not None and mutant.match.lower() not in msg.lower():
            out["how"] = f"the check failed, but not at {mutant.match!r}: {msg[:300]}"
        else:
            out["caught"], out["how"] = True, msg[:300]
    except KeyboardInterrupt:
        raise
    except Exception as e:
        tail = traceback.format_exc().strip().splitlines()[-1]
        out["how"] = f"the check crashed instead of failing ({type(e).__name__}): {tail[:300]}"
    else:
        out["how"] = "the check passed: it cannot see this bug"
    return out


def run_mutants(task_cls: type, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`run_mutant` for every declared mutant of ``task_cls``."""
    return [run_mutant(task_cls, m, **kwargs) for m in getattr(task_cls, "mutants", ())]


def validate(task_cls: Any) -> None:
    """Static check at registration: mutant names are unique and each one builds.

    Raises:
        ValueError: a repeated name, an object that is not a Mutant, or a patch naming an
            attribute or implementation the task lacks.
    """
    names = []
    for m in task_cls.mutants:
        if not isinstance(m, Mutant):
            raise ValueError(f"task {task_cls.id}: mutants must be harness.mutants.Mutant objects, got {m!r}")
        names.append(m.name)
        m.build(task_cls)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"task {task_cls.id}: mutant names repeat: {dup}")
