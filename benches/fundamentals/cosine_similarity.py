"""1.06 Cosine similarity between tensors, row by row and batched pairwise.

``F.cosine_similarity(x1, x2, dim, eps)`` computes x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))
(PyTorch docs, torch 2.x), clamping each norm on its own. Older docs (and many copies on the web)
clamp the product, max(||x1|| ||x2||, eps), and some add eps to the norms; the three differ for
small vectors: with ||x1|| = ||x2|| = 1e-5 (parallel) the per-norm clamp gives 1, the product
clamp 0.01. A zero vector gives 0, never NaN (every trial holds one, and one of norm 1e-9 < eps).

Compared (``rows``: x1[i] with x2[i] along ``dim``; ``pairwise``: all (B, N, M) pairs of x1 (B, N, D), x2 (B, M, D)):

* ``torch_cosine`` (baseline): ``F.cosine_similarity``; pairwise by broadcasting
  x1 (B, N, 1, D) against x2 (B, 1, M, D), which materialises (B, N, M, D) products.
* ``naive``: the formula as written: ``(x1 * x2).sum(dim)`` (a full-size product) over the
  product of the two clamped norms (``norm``); pairwise by the same broadcasting.
* ``fused``: rows: ``torch.linalg.vecdot`` and ``vector_norm`` (no full-size temporary); pairwise:
  rows normalised once, then one batched matmul x1n (B, N, D) @ x2n^T (B, D, M): nothing B N M D.

Lesson: the arithmetic is trivial; the cost is full-size temporaries and, pairwise, the
(B, N, M, D) intermediate that broadcasting builds. Normalising N + M rows once and letting a
matmul do the N M dot products turns a memory-bound op into a BLAS call (a GEMM does O(D) flops
per byte loaded, an elementwise product O(1): Williams et al., "Roofline", CACM 2009).
``F.cosine_similarity`` divides each input by its norm before the dot product, so it allocates
several full-size temporaries even row by row. The operators: :mod:`kernels.tensor.cosine`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import replace_call
from kernels.tensor import wrong
from kernels.tensor.cosine import EPS, broadcast_pairs, cosine_fused, cosine_naive, cosine_pairwise_matmul, edge_vectors


@dataclasses.dataclass(frozen=True)
class CosineConfig:
    """Cosine similarity of x1 and x2 along ``dim`` (rows), or of all row pairs (pairwise)."""

    shape: tuple[int, ...]
    """shape of x1 (elements); rows mode: x2 has the same shape"""
    dim: int = -1
    """dimension holding the vectors (rows mode; pairwise uses the last)"""
    m: int = 0
    """pairwise mode when > 0: x2 is shape[:-2] + (m, D), output shape[:-1] + (m,)"""

    @property
    def label(self) -> str:
        s = "x".join(map(str, self.shape))
        return f"pairwise {s} vs m={self.m}" if self.m else f"rows {s} dim={self.dim}"


@task("fundamentals.cosine_similarity", seed="1.06", title="cosine similarity between tensors")
class CosineSimilarity(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            CosineConfig((7, 13)),
            CosineConfig((4, 6, 5), dim=1),
            CosineConfig((2, 5, 8), m=3),
            CosineConfig((1, 9, 4), m=6),
        ],
        "cpu": [CosineConfig((16384, 256)), CosineConfig((256, 16384), dim=0), CosineConfig((1, 256, 128), m=256)],
        "gpu": [CosineConfig((262144, 256)), CosineConfig((256, 262144), dim=0), CosineConfig((8, 1024, 256), m=1024)],
    }
    claims = (
        speedup(
            "fused",
            over="torch_cosine",
            at_least=10,
            text="all pairs by one matmul >= 10x broadcasting F.cosine_similarity over (B, N, M, D)",
        ),
        time_ratio(
            "fused",
            to="torch_cosine",
            at_most=1.0,
            config="dim=-1",
            text="row-wise vecdot + vector_norm no slower than F.cosine_similarity (vectors along the last dim)",
        ),
    )
    mutants = (
        replace_call("no_eps", "divides by the raw norms: a zero vector gives 0/0 = NaN", "naive", wrong.cosine_no_eps),
        replace_call(
            "product_clamp",
            "clamps the product of the norms (the old documented formula)",
            "naive",
            wrong.cosine_product_clamp,
        ),
        replace_call("eps_added", "adds eps to each norm instead of clamping", "fused", wrong.cosine_eps_added),
        replace_call("pairwise_transposed", "pairs x2's rows with x1's", "fused", wrong.cosine_pairwise_transposed),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        if config.m:
            x1 = edge_vectors(config.shape, -1, g, dtype)
            # zero / tiny rows of x2 at the end (flip), not paired with x1's
            x2 = edge_vectors((*config.shape[:-2], config.m, config.shape[-1]), -1, g, dtype).flip(-2)
        else:
            x1, x2 = edge_vectors(config.shape, config.dim, g, dtype), edge_vectors(config.shape, config.dim, g, dtype)
        return x1.to(device), x2.to(device), config.dim, config.m > 0, EPS

    def reference(self, x1, x2, dim, pairwise, eps):
        return F.cosine_similarity(*broadcast_pairs(x1, x2, dim, pairwise), eps=eps)

    def bytes(self, config, dtype):
        n1 = math.prod(config.shape)
        if config.m:  # x1 (..., N, D) and x2 (..., M, D) in, (..., N, M) out
            n2, out = n1 // config.shape[-2] * config.m, n1 // config.shape[-1] * config.m
        else:  # x1, x2 in, one value per vector out
            n2, out = n1, n1 // config.shape[config.dim]
        return (n1 + n2 + out) * torch.empty((), dtype=dtype).element_size()

    def flops(self, config):
        # pairwise: the dot products dominate, 2 D per output; rows: a dot and two squared norms, 6 per element
        return math.prod(config.shape) * (2 * config.m if config.m else 6)

    @impl(baseline=True)
    def torch_cosine(self, x1, x2, dim, pairwise, eps):
        return lambda: self.reference(x1, x2, dim, pairwise, eps)

    @impl
    def naive(self, x1, x2, dim, pairwise, eps):
        return lambda: cosine_naive(*broadcast_pairs(x1, x2, dim, pairwise), eps)  # pairwise: (..., N, M, D) products

    @impl
    def fused(self, x1, x2, dim, pairwise, eps):
        return (lambda: cosine_pairwise_matmul(x1, x2, eps)) if pairwise else (lambda: cosine_fused(x1, x2, dim, eps))

    def extra_checks(self, ctx):
        u = torch.tensor([[0.6, 0.8, 0.0]], dtype=ctx.dtype, device=ctx.device)  # a unit vector
        cases = [  # (name, x1, x2, eps, expected), rows along the last dim
            ("zero vs vector", torch.zeros_like(u), u, EPS, 0.0),
            ("zero vs zero", torch.zeros_like(u), torch.zeros_like(u), EPS, 0.0),
            ("norms 1e-5 each: per-norm clamp, not product", u * 1e-5, u * 1e-5, EPS, 1.0),
            ("norm 1e-9 below eps: clamped to eps, eps not added", u * 1e-9, u, EPS, 0.1),
            ("eps argument honoured", u * 0.1, -u, 0.5, -0.2),
        ]
        for spec in ctx.implementations(self):
            for name, x1, x2, eps, want in cases:
                for pairwise in (False, True):
                    out = getattr(self, spec.method)(x1, x2, -1, pairwise, eps)().reshape(())  # (1,) or (1, 1) -> ()
                    where = f"{spec.name} pairwise={pairwise}"
                    ctx.expect(not bool(out.isnan().any()), f"{where}: {name} gives NaN", name="no NaN")
                    ctx.assert_close(out, u.new_tensor(want), name=f"eps rule: {name}", where=where)
