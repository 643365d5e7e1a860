"""``expect_rejects``: every implementation of an operator task rejects bad input with a clear error.

Several operator tasks check the same property on each of their implementations: a bad
argument (a dim out of range, a negative label, incompatible shapes) raises a named
exception whose message says what is wrong. The cases are a table in the task file::

    x = torch.randn(3, 4)
    expect_rejects(ctx, self, [
        (IndexError, (x, 2), "out of range", "dim out of range raises"),   # (error, inputs, message part, check name)
    ])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def expect_rejects(
    ctx: Any, task: Any, cases: Iterable[tuple[type[BaseException], tuple, str | None, str]], *, baseline: bool = True
) -> None:
    """Check each case ``(error, inputs, match, name)`` on every implementation available on ``ctx``.

    The implementation is built on ``inputs`` (a tuple, as ``task.inputs`` returns) and its
    closure called, both inside the check: raising ``error`` whose message contains ``match``
    (case-insensitive; None: any message) passes, anything else fails check ``name`` with
    :class:`harness.checks.CheckFailed` (``ctx.expect_raises``). ``baseline=False`` skips the
    baseline (a torch op whose own error is not the task's to judge).
    """
    cases = list(cases)
    for spec in ctx.implementations(task):
        if spec.baseline and not baseline:
            continue
        build = getattr(task, str(spec.method))
        for error, inputs, match, name in cases:
            ctx.expect_raises(error, lambda b=build, i=inputs: b(*i)(), match=match, name=name)
