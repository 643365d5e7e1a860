"""1.01 Matrix multiplication without torch.mm / matmul / @.

Compared: three hand-written matmuls against ``torch.matmul`` (the baseline):

* ``loop``: the textbook triple loop, vectorised over the inner dimension only (one
  dot product per output element in Python), so its cost is M*N interpreter trips.
* ``broadcast_sum``: ``(a[..., :, :, None] * b[..., None, :, :]).sum(-2)``: no Python
  loop, but it materialises an (M, K, N) product tensor, K times the output's bytes.
* ``blocked``: tiles of BLOCK x BLOCK, each tile product done as a broadcast-sum over a
  K-tile, accumulating into the output; memory stays O(BLOCK^3) per step.

Lesson: the Python loop pays one interpreter round trip per output element, so it is orders
of magnitude behind BLAS; the broadcast-sum removes the interpreter but materialises K times
the output's bytes; blocking bounds the memory but does no register or cache tiling, so a
tuned GEMM (what ``torch.matmul`` calls: MKL/OpenBLAS on CPU, cuBLAS on GPU) stays far ahead.
For scale: a tuned SGEMM reaches 80-90 % of a core's FMA peak (Goto & van de Geijn, "Anatomy of
High-Performance Matrix Multiplication", ACM TOMS 2008); the claims below say how far each hand
version stays behind on the machine that ran them. The operators, with torch.matmul's rank rules
(1-D operands, broadcast batch dims, empty dims), live in :mod:`kernels.tensor.matmul`.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Operator, impl, task
from harness.claims import speedup
from harness.mutants import replace_impl
from kernels.tensor.matmul import matmul_blocked, matmul_broadcast_sum, matmul_loop


@dataclasses.dataclass(frozen=True)
class MatmulConfig:
    """C (batch, m, n) = A (batch, m, k) @ B (batch, k, n)."""

    m: int
    """rows of A and C"""
    k: int
    """inner dimension"""
    n: int
    """columns of B and C"""
    batch: int = 0
    """leading batch dimension; 0 means plain 2-D matrices"""


@task("fundamentals.manual_matmul", seed="1.01", title="matrix multiplication without torch.mm/matmul/@")
class ManualMatmul(Operator):
    __doc__ = __doc__
    sizes = {
        # odd shapes and a batched case: tails of every block size get exercised
        "tiny": [MatmulConfig(7, 13, 5), MatmulConfig(33, 70, 41), MatmulConfig(5, 9, 11, batch=3)],
        "cpu": [MatmulConfig(s, s, s) for s in (32, 64, 128, 256)],
        "gpu": [MatmulConfig(s, s, s) for s in (32, 64, 128, 256)],
    }
    claims = (
        speedup("torch_matmul", over="blocked", at_least=10, text="torch.matmul >= 10x the blocked version at 256^3"),
        speedup("broadcast_sum", over="loop", at_least=10, text="broadcast-sum >= 10x the Python loop at 256^3"),
    )
    mutants = (
        # sums over the wrong axis: B's transpose where shapes allow, else a shape error
        replace_impl(
            "transposed_operand",
            "broadcast-sum reduces over the wrong axis (multiplies by B^T)",
            "broadcast_sum",
            lambda self, a, b: lambda: (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-3)[..., : a.shape[-2], :],
        ),
        replace_impl(
            "missing_tail_tile",
            "the blocked version never writes the last tile",
            "blocked",
            lambda self, a, b: lambda: torch.matmul(a, b).index_fill(-1, torch.tensor([b.shape[-1] - 1]), 0.0),
        ),
        replace_impl(
            "unwritten_output",
            "the loop returns its zero-initialised buffer",
            "loop",
            lambda self, a, b: lambda: torch.zeros(*a.shape[:-1], b.shape[-1], dtype=a.dtype),
            match="constant",
        ),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        lead = (config.batch,) if config.batch else ()
        a = torch.randn(*lead, config.m, config.k, generator=g, dtype=dtype)
        b = torch.randn(*lead, config.k, config.n, generator=g, dtype=dtype)
        return a.to(device), b.to(device)

    def reference(self, a, b):
        return torch.matmul(a, b)

    def flops(self, config):
        return 2 * max(config.batch, 1) * config.m * config.n * config.k

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        return el * max(config.batch, 1) * (config.m * config.k + config.k * config.n + config.m * config.n)

    @impl(baseline=True)
    def torch_matmul(self, a, b):
        return lambda: torch.matmul(a, b)

    @impl
    def loop(self, a, b):
        return lambda: matmul_loop(a, b)

    @impl
    def broadcast_sum(self, a, b):
        return lambda: matmul_broadcast_sum(a, b)

    @impl
    def blocked(self, a, b):
        return lambda: matmul_blocked(a, b)
