"""Capturing a model for inference: TorchScript without its warnings, AOTInductor packages, and
timing compilers that may be missing.

``torch.jit`` is deprecated (torch 2.13 warns on every call) and the tracer warns about every
branch it freezes: in a task whose lesson is exactly those warnings they are noise in the run
record, so :func:`quiet_jit` silences them. An AOTInductor package
(``torch._inductor.aoti_compile_and_package``) is a C++ build; :func:`time_or_skip` records a
compiler that fails to build as a skipped part instead of an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def quiet_jit(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` (``torch.jit.script`` / ``torch.jit.trace``) with every warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def jit_round_trip(m: torch.jit.ScriptModule, path: Path) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """``(("before save", m), ("reloaded", m'))``: ``m`` saved to ``path`` and read back with ``torch.jit.load``."""
    m.save(str(path))
    return ("before save", m), ("reloaded", torch.jit.load(str(path)))


def aoti_load(model: torch.nn.Module, x: torch.Tensor, package: Path) -> Callable[..., Any]:
    """Export ``model`` on ``x`` (static shapes), build an AOTInductor package at ``package``
    (a ``.pt2`` file) and load it; the loaded callable takes inputs shaped like ``x``.

    Raises whatever the C++ build raises (no compiler, an inductor bug).
    """
    ep = torch.export.export(model, (x,))
    path = torch._inductor.aoti_compile_and_package(ep, package_path=str(package))
    return torch._inductor.aoti_load_package(path)


def time_or_skip(ctx, task, impl: str, config: Any, *, may_fail: bool) -> None:
    """``ctx.measure`` of ``task.prepare(ctx, impl, config)``, teardown included.

    ``may_fail``: a failure to prepare (a compiler's build) becomes a skipped part ``timing of
    <impl>`` with the error's first line; otherwise it propagates (eager failing is a bug).
    """
    try:
        prepared = task.prepare(ctx, impl, config)
    except Exception as e:
        if not may_fail:
            raise
        ctx.skip_part(f"timing of {impl}", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
        return
    try:
        ctx.measure(impl, prepared, config=config)
    finally:
        if prepared.teardown is not None:
            prepared.teardown()
