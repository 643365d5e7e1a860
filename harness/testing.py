"""Helpers for tests that show a task's check can fail.

Every check gets a test that feeds it a wrong implementation (DESIGN.md: "a check that
cannot fail is a defect")::

    from harness.testing import expect_check_fails, planted, run_check

    def test_loop_matmul_off_by_one_is_caught():
        Wrong = planted(ManualMatmul, "loop", lambda self, a, b: (lambda: a @ b + 1e-3))
        expect_check_fails(Wrong, match="loop")

:func:`planted` returns an unregistered subclass whose implementation ``name`` is
replaced (operator tasks: a method taking the inputs and returning a closure). For
other kinds, subclass the task in the test and override the method you want to break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from harness.checks import CheckFailed
from harness.context import Context, TaskRecord
from harness.runner import check_threads
from harness.task import Task


def run_check(
    task_cls: type[Task],
    *,
    size: str = "tiny",
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    rng_seed: int = 0,
) -> TaskRecord:
    """Run ``task_cls``'s check in this process; raises CheckFailed on failure."""
    task = task_cls()
    rec = TaskRecord(id=task_cls.id)
    for dt in [dtype] if dtype else list(task_cls.check_dtypes):
        ctx = Context(task, mode="check", device=device, dtype=dt, size=size, rng_seed=rng_seed, record=rec)
        torch.manual_seed(rng_seed)
        with check_threads():
            task.check(ctx)
    return rec


def expect_check_fails(task_cls: type[Task], *, match: str | None = None, **kwargs: Any) -> CheckFailed:
    """Assert that the check of ``task_cls`` raises CheckFailed (message containing ``match``)."""
    with pytest.raises(CheckFailed) as info:
        run_check(task_cls, **kwargs)
    if match is not None:
        assert match in str(info.value), f"check failed, but not for {match!r}: {info.value}"
    return info.value


def planted(task_cls: type[Task], name: str, wrong: Callable[..., Callable[[], Any]]) -> type[Task]:
    """An unregistered subclass of operator ``task_cls`` with implementation ``name`` replaced.

    ``wrong(self, *inputs)`` must return a zero-argument closure, like any implementation.
    """
    from harness.mutants import replace_impl

    return replace_impl(f"planted_{name}", "planted in a test", name, wrong).build(task_cls)
