"""Triton kernels of torchdrills: matmul, fused LayerNorm + Dropout, sum, softmax.

On a CUDA machine they compile for the GPU.  Without one, set ``TRITON_INTERPRET=1``
before anything imports triton and they run in Triton's interpreter on CPU tensors
(numpy underneath: slow, for correctness checks only).  The interpreter cannot do
bfloat16 arithmetic, so every kernel converts loaded values to fp32 first.

Requires the optional ``triton`` package: ``pip install torchdrills[triton]``.
"""

try:
    import triton  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "kernels.triton needs the optional 'triton' package; install it with "
        "`pip install torchdrills[triton]` (or `pip install triton`)"
    ) from exc

from ._common import INTERPRETER
from .layernorm_dropout import (
    fused_layernorm_dropout,
    layernorm_dropout_bwd,
    layernorm_dropout_fwd,
    layernorm_dropout_reference,
)
from .matmul import MATMUL_CONFIGS, MatmulConfig, matmul, matmul_bytes, matmul_flops
from .reduction import sum_all, sum_lastdim, triton_sum
from .softmax import softmax, softmax_bwd, softmax_fwd

__all__ = [
    "INTERPRETER",
    "MATMUL_CONFIGS",
    "MatmulConfig",
    "fused_layernorm_dropout",
    "layernorm_dropout_bwd",
    "layernorm_dropout_fwd",
    "layernorm_dropout_reference",
    "matmul",
    "matmul_bytes",
    "matmul_flops",
    "softmax",
    "softmax_bwd",
    "softmax_fwd",
    "sum_all",
    "sum_lastdim",
    "triton_sum",
]
