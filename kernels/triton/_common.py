"""Shared launcher helpers for the Triton kernels: interpreter detection, input checks,
row-tile heuristics and device facts.

Not a public module; the launchers in this package import from it.
"""

from __future__ import annotations

import contextlib
import functools

import torch
import triton
from triton.runtime.jit import JITFunction


@triton.jit
def _probe_kernel():
    pass


#: True when Triton was imported with ``TRITON_INTERPRET=1``: every ``@triton.jit`` in
#: this package is then an interpreter function that runs on CPU tensors through numpy.
#: Decided by what ``triton.jit`` actually produced, not by re-reading the environment,
#: because Triton reads the variable once when a kernel is decorated.
INTERPRETER: bool = not isinstance(_probe_kernel, JITFunction)

#: Largest row (elements) that the row-per-block kernels (layer norm, softmax) hold in
#: one block.  2**15 fp32 values over 16 warps is 64 registers a thread for the row: past
#: that the compiler spills to local memory and the kernel stops being bandwidth-bound.
MAX_FUSED_N = 32768

#: Elements per row tile that the row kernels aim for when rows are short: several rows
#: per program so a program moves enough bytes (>= 8 KiB fp16) to hide latency.
TILE_ELEMS = 4096


def check_device(name: str, t: torch.Tensor) -> None:
    """Raise ValueError if ``t`` cannot run on the active Triton backend."""
    if t.device.type == "cpu" and not INTERPRETER:
        raise ValueError(
            f"{name} is on the CPU but Triton was imported without the interpreter; "
            "move the tensors to CUDA, or set TRITON_INTERPRET=1 before importing triton"
        )
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be a CPU (interpreter) or CUDA tensor, got device {t.device}")


def device_guard(t: torch.Tensor):
    """Context that makes ``t``'s GPU current: Triton launches on the current device and
    stream, which need not be the tensor's (e.g. a tensor on cuda:1)."""
    if t.device.type == "cuda" and not INTERPRETER:
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def check_float(name: str, t: torch.Tensor, allowed=(torch.float16, torch.bfloat16, torch.float32)) -> None:
    """Raise TypeError unless ``t.dtype`` is one of ``allowed``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"{name} has dtype {t.dtype}; supported: {names}")


def check_seed(seed: int) -> int:
    """Seeds go to the kernel as a Python int; Triton types it i32/i64/u64 by value."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a Python int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must lie in [0, 2**63), got {seed}")
    return seed


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def num_programs_hint(device: torch.device) -> int:
    """Programs that fill the device once: SM count on CUDA, 4 under the interpreter
    (each interpreted program costs Python time; 4 still exercises the multi-program
    paths)."""
    if device.type == "cuda" and not INTERPRETER:
        return _sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 4


def row_tile(n: int, max_n: int = MAX_FUSED_N) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps) for kernels that hold whole rows of length ``n``.

    BLOCK_N is the next power of two >= n (masked tail); short rows are stacked
    BLOCK_M to a program up to :data:`TILE_ELEMS` elements.  Raises ValueError if
    ``n > max_n``.
    """
    if n > max_n:
        raise ValueError(
            f"rows of {n} elements do not fit one block (max {max_n}); "
            "this kernel keeps a whole row in registers: use the eager op for longer rows"
        )
    block_n = triton.next_power_of_2(max(n, 1))
    block_m = max(1, TILE_ELEMS // block_n)
    tile = block_m * block_n
    # one warp per 512 elements of the tile (16 per thread, four 16-byte fp32 vectors),
    # clamped to 4..16 warps: 16 warps x 32 threads hold a 32k row at 64 values a thread
    num_warps = min(16, max(4, tile // 512))
    return block_m, block_n, num_warps
