"""CUDA C++ extension: fused LayerNorm + Dropout and sum reductions, plus an nvcc compile check.

Sources in this folder:

- ``layernorm_dropout.cu``: forward (one block per row, Welford statistics, 16-byte vector loads
  when aligned, Philox mask), backward dx (row kernel, mask regenerated) and dgamma/dbeta
  (column tiles with row splits and a deterministic partial-sum pass);
- ``reduction.cu``: whole-tensor sum (grid-stride loop, warp shuffles, shared memory per warp,
  two stages) and last-dim sum (one warp per row);
- ``philox.cuh`` (shared with the CPU extension), ``common.cuh``, ``launch.h`` (raw-pointer
  launchers), ``bindings.cpp`` (tensors, streams, dtype dispatch, pybind11).

Two ways in:

- :func:`compile_check` (re-exported from :mod:`kernels.cuda.nvcc`) compiles one ``.cu`` with
  ``nvcc -c -arch=sm_90 -Xptxas -v`` and returns registers / shared memory / stack / spills per
  kernel. It needs nvcc only, no GPU: it runs on the CPU-only CI box (about 5 s for
  layernorm_dropout.cu and 2.5 s for reduction.cu on 2 cores).
- :func:`load` builds the extension with ``torch.utils.cpp_extension.load`` (ninja) for the
  current GPU's architecture (sm_90 on H100/H200), ``-O3`` and no ``--use_fast_math`` (Philox's
  uniform floats and the statistics must round as the references do). It needs a CUDA device:
  on a CPU-only machine it raises RuntimeError; tests skip with "needs cuda".

Dtypes: float32, float16, bfloat16, float64; accumulation in float32 (float64 for float64).
Sources: Apex and PyTorch layer_norm CUDA kernels, Triton tutorials 04/05, Mark Harris'
"Optimizing Parallel Reduction in CUDA".
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import torch

from ..cpp.common import (
    ExtensionBuildError,
    LayerNormDropoutFunction,
    build_dir,
    build_once,
    build_root,
    check_layer_norm_inputs,
    check_sum_input,
    layer_norm_dropout_bytes,
    load_error,
    sum_bytes,
)
from .nvcc import (
    CompileReport,
    KernelResources,
    NvccNotFoundError,
    compile_check,
    find_nvcc,
    parse_ptxas,
)

__all__ = [
    "build_root",
    "build_error",
    "ExtensionBuildError",
    "DTYPES",
    "KERNEL_SOURCES",
    "SOURCES",
    "CompileReport",
    "KernelResources",
    "NvccNotFoundError",
    "compile_check",
    "find_nvcc",
    "parse_ptxas",
    "load",
    "layer_norm_dropout",
    "layer_norm_dropout_forward",
    "layer_norm_dropout_backward",
    "sum_all",
    "sum_lastdim",
    "philox_uniform",
    "layer_norm_dropout_bytes",
    "sum_bytes",
]

HERE = Path(__file__).resolve().parent
KERNEL_SOURCES = (HERE / "layernorm_dropout.cu", HERE / "reduction.cu")
SOURCES = (HERE / "bindings.cpp", *KERNEL_SOURCES)
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def current_arch() -> str:
    """``sm_XY`` of the current CUDA device (``sm_90`` on H100/H200).

    Raises RuntimeError when no CUDA device is visible.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible (torch.cuda.is_available() is False)")
    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}"


@functools.cache
def load(arch: str | None = None, verbose: bool = False) -> ModuleType:
    """Build (first call: ~1-2 min, bindings.cpp dominates) or load the CUDA extension.

    Args:
        arch: ``sm_XY`` to compile for; default :func:`current_arch` (``sm_90`` on H100/H200).
        verbose: print ninja's and the compilers' output.

    The build folder is ``build_root() / f"torchdrills_cuda_{arch}"`` (outside the repo, reused
    across processes until a source or flag changes). Flags: host ``-O3``; device ``-O3`` and
    ``-gencode=arch=compute_XY,code=sm_XY``; no ``--use_fast_math``.

    Raises:
        RuntimeError: no CUDA device ("use kernels.cpp on CPU, or compile_check to compile
            without a GPU").
        ExtensionBuildError: the build failed (a RuntimeError; one line naming the first compiler
            error; raised at once, without rebuilding, on later calls in this process).
        NvccNotFoundError: no nvcc.
    """
    if not torch.cuda.is_available():
        raise RuntimeError(
            "kernels.cuda.load() needs a CUDA device (torch.cuda.is_available() is False); "
            "use kernels.cpp on the CPU, or kernels.cuda.compile_check() to compile without a GPU"
        )
    if find_nvcc() is None:
        raise NvccNotFoundError("kernels.cuda.load() needs nvcc; install the CUDA toolkit or set CUDA_HOME")
    from torch.utils.cpp_extension import load as _load

    arch = arch or current_arch()
    digits = arch.removeprefix("sm_")
    name = f"torchdrills_cuda_{arch}"
    bdir = build_dir(name)
    return build_once(
        name,
        lambda: _load(
            name=name,
            sources=[str(s) for s in SOURCES],
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", f"-gencode=arch=compute_{digits},code=sm_{digits}"],
            extra_include_paths=[str(HERE)],
            build_directory=str(bdir),
            verbose=verbose,
        ),
    )


def build_error() -> str | None:
    """None when :func:`load` works here, else why not in one line (no GPU, no nvcc, or the
    build failed): a task records it with ``ctx.skip_part`` and goes on with its Triton and
    torch implementations."""
    return load_error(load)


def _stat_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def layer_norm_dropout_forward(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    p: float,
    seed: int,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LayerNorm over the last dim then Philox dropout on the GPU (no autograd).

    Args:
        x: (..., N) CUDA, contiguous, float32/float16/bfloat16/float64; N >= 1; at most 2^31 - 1
            rows (one block per row).
        weight, bias: (N,) of x's dtype on x's device, or None.
        p: drop probability in [0, 1]; seed: int in [0, 2**63); eps >= 0.

    Returns:
        ``(out, mean, rstd)``: out like x; mean and rstd of shape x.shape[:-1] in float32
        (float64 for float64 x).

    Same mask as kernels.cpp and kernels/rng/philox.py (kept iff ``tl.rand(seed, k) > p`` for
    row-major index k; kept values times 1/(1-p)). Asynchronous on the current stream.
    Bytes moved: :func:`layer_norm_dropout_bytes` with ``stat_itemsize=4`` (8 for float64).

    Raises:
        TypeError / ValueError: see :func:`kernels.cpp.common.check_layer_norm_inputs`;
        RuntimeError: from :func:`load` when there is no GPU.
    """
    check_layer_norm_inputs(x, weight, bias, p, seed, eps, device_type="cuda", dtypes=DTYPES)
    return tuple(load().layer_norm_dropout_forward(x, weight, bias, float(p), seed, float(eps)))


def layer_norm_dropout_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    *,
    p: float,
    seed: int,
    need_weight_grad: bool = True,
    need_bias_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of :func:`layer_norm_dropout_forward`; the mask is regenerated from ``seed``.

    Args: grad_out like x; mean, rstd as the forward returned them (float32, or float64 for
    float64 x; shape x.shape[:-1]); the rest as the forward.
    Returns: ``(grad_x, grad_weight (N,) or None, grad_bias (N,) or None)``.
    Work: a row kernel for grad_x, then a column-tile kernel for dgamma/dbeta (reads x and
    grad_out a second time) and a small kernel that adds its row-split partials.
    Raises: TypeError / ValueError for bad shapes, dtypes, devices.
    """
    check_layer_norm_inputs(x, weight, None, p, seed, 0.0, device_type="cuda", dtypes=DTYPES)
    checks = (
        ("grad_out", grad_out, x.shape, x.dtype),
        ("mean", mean, x.shape[:-1], _stat_dtype(x)),
        ("rstd", rstd, x.shape[:-1], _stat_dtype(x)),
    )
    for name, t, shape, dtype in checks:
        check_sum_input(t, device_type="cuda", dtypes=(dtype,), lastdim=False)
        if t.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return tuple(
        load().layer_norm_dropout_backward(
            grad_out,
            x,
            weight,
            mean,
            rstd,
            float(p),
            seed,
            bool(need_weight_grad and weight is not None),
            bool(need_bias_grad),
        )
    )


def layer_norm_dropout(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    p: float = 0.1,
    seed: int = 0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Differentiable fused LayerNorm + Dropout on the GPU: (..., N) -> (..., N).

    Arguments as :func:`layer_norm_dropout_forward`; gradients for x, weight and bias through
    :class:`kernels.cpp.common.LayerNormDropoutFunction`. Use a fresh seed per training step.
    """
    check_layer_norm_inputs(x, weight, bias, p, seed, eps, device_type="cuda", dtypes=DTYPES)
    return LayerNormDropoutFunction.apply(x, weight, bias, float(p), seed, float(eps), load())


def sum_all(x: torch.Tensor) -> torch.Tensor:
    """Sum of all elements: CUDA, contiguous, float32/float16/bfloat16/float64 -> 0-dim, x.dtype.

    Two launches (block partials, then one block), deterministic; fp32 accumulation (fp64 for
    fp64). Bytes moved: ``sum_bytes(x.numel(), x.element_size())``.
    Raises TypeError (dtype) / ValueError (device, contiguity).
    """
    check_sum_input(x, device_type="cuda", dtypes=DTYPES, lastdim=False)
    return load().sum_all(x)


def sum_lastdim(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim: (..., N) -> (...), CUDA, contiguous, same dtypes as :func:`sum_all`.

    One warp per row. Bytes moved: ``sum_bytes(x.numel(), x.element_size(), x.numel() // N)``.
    Raises TypeError (dtype) / ValueError (device, contiguity, 0-dim input).
    """
    check_sum_input(x, device_type="cuda", dtypes=DTYPES, lastdim=True)
    return load().sum_lastdim(x)


def philox_uniform(seed: int, offsets: torch.Tensor) -> torch.Tensor:
    """``tl.rand(seed, offsets)`` computed by the device copy of the shared Philox header.

    Args: seed int in [0, 2**63); offsets int64 CUDA tensor, values >= 0.
    Returns: float32 tensor of offsets' shape on the same device.
    """
    if not isinstance(offsets, torch.Tensor) or offsets.dtype != torch.int64:
        raise TypeError("offsets must be an int64 torch.Tensor")
    if offsets.device.type != "cuda":
        raise ValueError(f"offsets must be on a CUDA device, got {offsets.device}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    return load().philox_uniform(offsets.contiguous(), seed)
