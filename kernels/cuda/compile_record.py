"""A task's record of an nvcc compile: what m3.fused_ln_dropout and m3.reduction_kernel check
about their CUDA sources on any machine with the toolkit, GPU or not (``nvcc -c`` only needs
the toolkit; :func:`kernels.cuda.nvcc.compile_check` parses ptxas's resource lines).
"""

from __future__ import annotations

from typing import Any


def record_compile(ctx: Any, source_name: str) -> None:
    """Compile ``kernels/cuda/<source_name>`` for sm_90 and record success and per-kernel resources.

    Skipped (a recorded part) without nvcc. Records the checks ``<source> compiles for sm_90``
    and ``<source> kernels found``, the table ``ptxas resources, <source>, sm_90`` and the
    metrics ``nvcc_compile_s``, ``nvcc_max_registers``, ``nvcc_max_smem_bytes`` and
    ``nvcc_spill_bytes_total`` (see :mod:`kernels.cuda.nvcc` for why they matter).
    """
    if not ctx.require("nvcc", part=f"nvcc compile of kernels/cuda/{source_name} for sm_90"):
        return
    from kernels import cuda

    src = next(s for s in cuda.KERNEL_SOURCES if s.name == source_name)
    rep = cuda.compile_check(src, arch="sm_90")
    tail = "\n".join(rep.log.splitlines()[-15:])
    ctx.expect(
        rep.success,
        f"nvcc failed on {source_name} (exit {rep.returncode}):\n{tail}",
        name=f"{source_name} compiles for sm_90",
    )
    ctx.expect(
        len(rep.kernels) > 0, f"ptxas reported no kernels for {source_name}", name=f"{source_name} kernels found"
    )
    ctx.table(
        f"ptxas resources, {source_name}, sm_90",
        [
            {
                "kernel": k.short_name,
                "registers": k.registers,
                "smem_bytes": k.shared_bytes,
                "stack_bytes": k.stack_frame_bytes,
                "spill_store_bytes": k.spill_store_bytes,
                "spill_load_bytes": k.spill_load_bytes,
            }
            for k in sorted(rep.kernels, key=lambda k: k.short_name)
        ],
    )
    ctx.metric("nvcc_compile_s", rep.seconds)
    ctx.metric("nvcc_max_registers", max(k.registers for k in rep.kernels))
    ctx.metric("nvcc_max_smem_bytes", max(k.shared_bytes for k in rep.kernels))
    ctx.metric("nvcc_spill_bytes_total", sum(k.spill_store_bytes + k.spill_load_bytes for k in rep.kernels))
