"""Wrong matmuls: the mutants of m4.triton_matmul, each a plausible GEMM mistake that its
check must reject (``kernels.triton.matmul`` is the right kernel).

* :func:`matmul_no_k_tail`: the K loop runs ``K // BLOCK_K`` tile steps and drops the tail
  (its ``@triton.jit`` source lives in :mod:`kernels.triton.matmul_no_k_tail`);
* :func:`matmul_tf32_inputs`: fp32 inputs rounded to TF32, as tensor cores do under
  ``allow_tf32``.
"""

from __future__ import annotations

import torch

from kernels.triton.matmul_no_k_tail import matmul_no_k_tail

__all__ = ["matmul_no_k_tail", "matmul_tf32_inputs", "round_to_tf32"]


def round_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to TF32's 10-bit mantissa (round half up on the dropped 13 bits); float32
    only, other dtypes come back unchanged. Same shape and dtype as ``t``."""
    if t.dtype != torch.float32:
        return t
    return (t.view(torch.int32) + 0x1000 & ~0x1FFF).view(torch.float32)


def matmul_tf32_inputs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """WRONG: ``a @ b`` on inputs rounded to TF32 (a relative error of ~2**-11 per product,
    far over an fp32 check's tolerance). Shapes and dtypes as ``torch.matmul``."""
    return torch.matmul(round_to_tf32(a), round_to_tf32(b))
