"""Which implementations of an operator task can run here, when some are compiled extensions.

The m3 kernel tasks time a CPU C++ extension (:mod:`kernels.cpp`) and a CUDA extension
(:mod:`kernels.cuda`) beside torch and Triton. An extension that fails to build, or the CPU
one in a CUDA run, must not stop the rest: :func:`runnable_impls` records each such
implementation as a skipped part with its reason and returns the others.
"""

from __future__ import annotations

from typing import Any

from harness.contract import ImplSpec


def runnable_impls(
    task: Any, ctx: Any, *, cpp_impl: str | None = None, cuda_impl: str | None = None, bench: bool = False
) -> list[ImplSpec]:
    """``ctx.implementations(task, bench=bench)`` less those that cannot run here.

    Args:
        cpp_impl: name of the implementation backed by the CPU extension (CPU tensors only).
        cuda_impl: name of the implementation backed by the CUDA extension.
    """
    from kernels import cpp, cuda

    build_error = {cpp_impl: cpp.build_error, cuda_impl: cuda.build_error}
    out = []
    for s in ctx.implementations(task, bench=bench):
        if ctx.is_cuda and s.name == cpp_impl:
            ctx.skip_part(f"implementation {s.name}", "the CPU extension runs on the cpu device only")
        elif s.name in build_error and (reason := build_error[s.name]()):
            ctx.skip_part(f"implementation {s.name}", f"extension not built: {reason}")
        else:
            out.append(s)
    return out
