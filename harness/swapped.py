"""A module seen with one attribute swapped while its functions run: how a mutant plants a bug
inside a library the task calls (a derivative rule of an autograd engine, a helper of a kernel).

``Swapped(module, target, attr, wrong)`` behaves like ``module``: each function it hands out
runs with ``target.attr`` replaced by ``wrong`` and restored afterwards, and so do the
callables those functions return (a vjp's pullback, the function ``grad(f)`` builds), also
inside tuples. Nothing is left patched between calls, so a test or task that holds the real
module never sees the bug::

    mutants = (Mutant("sin_rule", "sin' = sin", {"engine": Swapped(ma, ops.sin, "vjps", (wrong,))}),)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any


class Swapped:
    """``module`` with ``target.attr`` replaced by ``wrong`` during every call through it."""

    def __init__(self, module: Any, target: Any, attr: str, wrong: Any):
        if not hasattr(target, attr):
            raise AttributeError(f"Swapped: {target!r} has no attribute {attr!r} to replace")
        self._module, self._target, self._attr, self._wrong = module, target, attr, wrong

    @contextlib.contextmanager
    def _swap(self) -> Iterator[None]:
        old = getattr(self._target, self._attr)
        setattr(self._target, self._attr, self._wrong)
        try:
            yield
        finally:
            setattr(self._target, self._attr, old)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        if not callable(value) or isinstance(value, type):
            return value

        @functools.wraps(value)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._swap():
                out = value(*args, **kwargs)
            return self._wrap(out)

        return run

    def __getattr__(self, name: str) -> Callable[..., Any] | Any:
        return self._wrap(getattr(self._module, name))

    def __repr__(self) -> str:
        return f"Swapped({getattr(self._module, '__name__', self._module)!r}, {self._attr!r})"
