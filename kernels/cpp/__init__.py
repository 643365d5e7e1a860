"""CPU C++ extension: fused LayerNorm + Dropout and sum reductions (pybind11, OpenMP).

Sources in this folder: ``layernorm_dropout.cpp`` and ``reduction.cpp`` (raw-pointer kernels,
no torch headers), ``bindings.cpp`` (tensor checks, allocation, pybind11 module), ``ops.h``; the
Philox header is shared with the CUDA kernels (``kernels/cuda/philox.cuh``).

Build: :func:`load` compiles with ``torch.utils.cpp_extension.load`` and ninja, flags
``-O3 -march=native -fopenmp``, into ``build_root()`` (``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torchdrills/ext``), outside the repository. The first build takes about a minute on a
2-core machine (``torch/extension.h`` dominates); later calls in any process reuse the cached
``.so`` until a source or flag changes (torch hashes both). In one process the module is cached
by ``functools.cache``.

Supported: CPU tensors, float32 and float64, contiguous. Sources: PyTorch's CPU layer_norm
kernel (aten/src/ATen/native/cpu/layer_norm_kernel.cpp) for the row-wise math, Triton
tutorial 04 for the Philox dropout mask, Mark Harris' reduction whitepaper for the reduction
decomposition. Accumulation: double everywhere; float64 whole-tensor sums add chunk sums with
Kahan compensation (see reduction.cpp).
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import torch

from .common import (
    ExtensionBuildError,
    LayerNormDropoutFunction,
    build_dir,
    build_once,
    build_root,
    check_layer_norm_inputs,
    check_sum_input,
    host_tag,
    layer_norm_dropout_bytes,
    load_error,
    sum_bytes,
)

__all__ = [
    "build_root",
    "build_error",
    "ExtensionBuildError",
    "DTYPES",
    "SOURCES",
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
CUDA_DIR = HERE.parent / "cuda"  # philox.cuh lives there (shared host/device header)
SOURCES = (HERE / "bindings.cpp", HERE / "layernorm_dropout.cpp", HERE / "reduction.cpp")
DTYPES = (torch.float32, torch.float64)
# No -ffast-math: it would let GCC reorder the Kahan step away and break exact Philox floats.
CFLAGS = ("-O3", "-march=native", "-fopenmp")
LDFLAGS = ("-fopenmp",)


@functools.cache
def load(verbose: bool = False) -> ModuleType:
    """Build (first call: ~1 min) or load (cached: ~1 s) the CPU extension module.

    Returns the compiled module (functions listed in kernels/cpp/common.py). The build folder is
    ``build_root() / "torchdrills_cpp_<host_tag>"``: the tag changes with the CPU because of
    ``-march=native``. Raises RuntimeError (from torch) with the compiler log when the build
    fails; ``verbose=True`` prints the ninja/compiler output as it goes.

    Raises:
        ExtensionBuildError: the build failed (now, or earlier in this process: then at once).
    """
    from torch.utils.cpp_extension import load as _load

    name = f"torchdrills_cpp_{host_tag()}"
    bdir = build_dir(name)
    return build_once(
        name,
        lambda: _load(
            name=name,
            sources=[str(s) for s in SOURCES],
            extra_cflags=list(CFLAGS),
            extra_ldflags=list(LDFLAGS),
            extra_include_paths=[str(HERE), str(CUDA_DIR)],
            build_directory=str(bdir),
            verbose=verbose,
        ),
    )


def build_error() -> str | None:
    """None when :func:`load` works here, else why not in one line (a task records it with
    ``ctx.skip_part`` and goes on with its other implementations)."""
    return load_error(load)


def layer_norm_dropout_forward(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    p: float,
    seed: int,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LayerNorm over the last dim, then dropout with the Philox mask (no autograd).

    Args:
        x: (..., N) float32/float64, contiguous, CPU; N >= 1.
        weight, bias: (N,) of x's dtype, or None (gamma = 1 / beta = 0).
        p: drop probability in [0, 1]. seed: int in [0, 2**63).
        eps: added to the variance, as in torch.nn.functional.layer_norm.

    Returns:
        ``(out, mean, rstd)``: out (..., N) like x; mean and rstd (...) in x's dtype, the
        per-row mean and 1/sqrt(biased var + eps) that the backward needs.

    Element k (row-major index) is kept iff ``tl.rand(seed, k) > p``, kept values scaled by
    1/(1-p); equal to ``F.layer_norm(x, (N,), weight, bias, eps) * mask / (1 - p)`` with
    ``mask = kernels.rng.philox.dropout_mask(seed, x.numel(), p)``.
    Bytes moved: :func:`layer_norm_dropout_bytes` (``2*M*N*itemsize`` + params + stats).

    Raises:
        TypeError / ValueError: see :func:`kernels.cpp.common.check_layer_norm_inputs`.
    """
    check_layer_norm_inputs(x, weight, bias, p, seed, eps, device_type="cpu", dtypes=DTYPES)
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
    """Gradients of :func:`layer_norm_dropout_forward` (mask regenerated from ``seed``).

    Args:
        grad_out: (..., N) like x. x, weight: as passed to the forward. mean, rstd: (...) as the
            forward returned them. p, seed: the forward's.
        need_weight_grad / need_bias_grad: compute grad_weight / grad_bias (else None; a
            missing weight always gives None).

    Returns:
        ``(grad_x (..., N), grad_weight (N,) or None, grad_bias (N,) or None)``.
    Bytes moved: :func:`layer_norm_dropout_bytes` with ``backward=True``.

    Raises:
        TypeError / ValueError: bad x/weight (as in the forward), grad_out shape != x shape,
        mean/rstd not of shape x.shape[:-1].
    """
    check_layer_norm_inputs(x, weight, None, p, seed, 0.0, device_type="cpu", dtypes=DTYPES)
    for name, t, shape in (("grad_out", grad_out, x.shape), ("mean", mean, x.shape[:-1]), ("rstd", rstd, x.shape[:-1])):
        check_sum_input(t, device_type="cpu", dtypes=(x.dtype,), lastdim=False)
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
    """Differentiable fused LayerNorm + Dropout on CPU: (..., N) -> (..., N).

    Same arguments and constraints as :func:`layer_norm_dropout_forward`; returns only the
    output and records a :class:`LayerNormDropoutFunction` node (gradients for x, weight, bias).
    Use a fresh seed per step in training: the same seed gives the same mask.
    """
    check_layer_norm_inputs(x, weight, bias, p, seed, eps, device_type="cpu", dtypes=DTYPES)
    return LayerNormDropoutFunction.apply(x, weight, bias, float(p), seed, float(eps), load())


def sum_all(x: torch.Tensor) -> torch.Tensor:
    """Sum of all elements of x: any shape, float32/float64, contiguous, CPU -> 0-dim, x.dtype.

    Double accumulation (float64 input: Kahan-combined chunk sums); an empty tensor sums to 0.
    Bytes moved: ``sum_bytes(x.numel(), x.element_size())``.
    Raises TypeError (dtype) / ValueError (device, contiguity).
    """
    check_sum_input(x, device_type="cpu", dtypes=DTYPES, lastdim=False)
    return load().sum_all(x)


def sum_lastdim(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim: (..., N) -> (...), float32/float64, contiguous, CPU.

    N == 0 gives zeros. Bytes moved: ``sum_bytes(x.numel(), x.element_size(), x.numel() // N)``.
    Raises TypeError (dtype) / ValueError (device, contiguity, 0-dim input).
    """
    check_sum_input(x, device_type="cpu", dtypes=DTYPES, lastdim=True)
    return load().sum_lastdim(x)


def philox_uniform(seed: int, offsets: torch.Tensor) -> torch.Tensor:
    """``tl.rand(seed, offsets)`` from the C++ copy of the shared Philox header.

    Args: seed int in [0, 2**63); offsets int64 CPU tensor, any shape, values >= 0.
    Returns: float32 tensor of offsets' shape, values in [0, 1).
    """
    if not isinstance(offsets, torch.Tensor) or offsets.dtype != torch.int64:
        raise TypeError("offsets must be an int64 torch.Tensor")
    if offsets.device.type != "cpu":
        raise ValueError(f"offsets must be on the CPU, got {offsets.device}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    return load().philox_uniform(offsets.contiguous(), seed)
