"""Capturing a model for inference: TorchScript without its warnings, AOTInductor packages, and
compilers that may be missing.

``torch.jit`` is deprecated (torch 2.13 warns on every call) and the tracer warns about every
branch it freezes: in a task whose lesson is exactly those warnings they are noise in the run
record, so :func:`quiet_jit` silences them. An AOTInductor package
(``torch._inductor.aoti_compile_and_package``) is a C++ build; :func:`compile_or_skip` turns a
compiler that fails to build into ``NotImplementedError``, which
``harness.task.measure_or_skip`` records as a skipped part instead of an error.
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


def export_round_trip(model: torch.nn.Module, x: torch.Tensor, path: Path, max_batch: int = 1024) -> Any:
    """``model`` captured by ``torch.export`` on ``x`` with dim 0 (the batch, 1..``max_batch``)
    dynamic, written to ``path`` (a ``.pt2`` file) by ``torch.export.save`` and read back: the
    loaded program's module, which takes any batch in range.

    ``x``'s batch must be >= 2: torch.export specialises sizes 0 and 1 and would fix the dim.
    Raises what ``torch.export.export`` raises (a data-dependent branch, a guard on the batch).
    """
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: batch},)), path)
    return torch.export.load(path).module()


def aoti_load(model: torch.nn.Module, x: torch.Tensor, package: Path) -> Callable[..., Any]:
    """Export ``model`` on ``x`` (static shapes), build an AOTInductor package at ``package``
    (a ``.pt2`` file) and load it; the loaded callable takes inputs shaped like ``x``.

    Raises whatever the C++ build raises (no compiler, an inductor bug).
    """
    ep = torch.export.export(model, (x,))
    path = torch._inductor.aoti_compile_and_package(ep, package_path=str(package))
    return torch._inductor.aoti_load_package(path)


def compile_or_skip(impl: str, model: torch.nn.Module, x: torch.Tensor, workdir: Path) -> Callable[..., Any]:
    """``model`` built by a compiler, warmed up once on ``x`` (under ``torch.inference_mode``).

    Args:
        impl: ``compiled`` (``torch.compile``, which builds on the first call) or
            ``aot_inductor`` (an AOTInductor package written to ``workdir / "cnn.pt2"``).

    Raises:
        NotImplementedError: the build failed (no C++ compiler, an inductor bug); the message is
            the error's type and first non-blank line (the type alone for an empty message, such
            as inductor's bare ``AssertionError``), which ``harness.task.measure_or_skip``
            records as the skipped part's reason.
        ValueError: an unknown ``impl``.
    """
    if impl not in ("compiled", "aot_inductor"):
        raise ValueError(f"unknown compiler {impl!r}; use 'compiled' or 'aot_inductor'")
    try:
        built = torch.compile(model) if impl == "compiled" else aoti_load(model, x, workdir / "cnn.pt2")
        with torch.inference_mode():
            built(x)
    except Exception as e:
        lines = str(e).strip().splitlines()  # [] for a bare `raise AssertionError`
        reason = f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__
        raise NotImplementedError(reason) from e
    return built
