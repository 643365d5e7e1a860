"""1.06 Cosine similarity between tensors, row by row and batched pairwise.

``F.cosine_similarity(x1, x2, dim, eps)`` computes (PyTorch docs, torch 2.x)

    x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))

clamping each norm on its own. Older docs (and many copies on the web) clamp the
product, max(||x1|| ||x2||, eps), and some add eps to the norms; the three differ for
small vectors: with ||x1|| = ||x2|| = 1e-5 (parallel) the per-norm clamp gives 1,
the product clamp 0.01. A zero vector gives 0, never NaN. The check feeds every
implementation zero vectors and vectors of norm 1e-9 (below eps) in every trial, and
tests the eps rule on hand-made pairs.

Compared (modes: ``rows`` pairs x1[i] with x2[i] along ``dim``; ``pairwise`` gives all
(B, N, M) similarities of x1 (B, N, D) and x2 (B, M, D)):

* ``torch_cosine`` (baseline): ``F.cosine_similarity``; pairwise by broadcasting
  x1 (B, N, 1, D) against x2 (B, 1, M, D), which materialises (B, N, M, D) products.
* ``naive``: the formula as written: ``(x1 * x2).sum(dim)`` (a full-size product)
  over the product of the two clamped norms (``norm``); pairwise by the same broadcasting.
* ``fused``: rows: ``torch.linalg.vecdot`` and ``vector_norm`` (no full-size
  temporary); pairwise: rows normalised once, then one batched matmul
  x1n (B, N, D) @ x2n^T (B, D, M), so nothing of size B N M D exists.

Lesson: the arithmetic is trivial; the cost is full-size temporaries and, pairwise,
the (B, N, M, D) intermediate that broadcasting builds. Normalising N + M rows once and
letting a matmul do the N M dot products turns a memory-bound op into a BLAS call (a
GEMM does O(D) flops per byte loaded, an elementwise product O(1): Williams et al.,
"Roofline", CACM 2009). ``F.cosine_similarity`` divides each input by its norm before the
dot product, so it allocates several full-size temporaries even row by row. The
operators live in :mod:`kernels.tensor.cosine`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import replace_impl
from kernels.tensor.cosine import EPS, cosine_fused, cosine_naive, cosine_pairwise_matmul


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


def _vectors(shape, dim, g, dtype):
    """Random vectors along ``dim`` with one zero vector and one of norm ~1e-9 (< eps)."""
    d = shape[dim]
    rest = [n for i, n in enumerate(shape) if i != dim % len(shape)]
    base = torch.randn(*rest, d, generator=g, dtype=dtype)  # (..., D): vectors last
    rows = base.view(-1, d)  # (R, D), a view: edits land in base
    rows[0] = 0.0
    if rows.shape[0] > 1:
        rows[1] *= 1e-9
    return base.movedim(-1, dim)  # vectors back along dim (a view, non-contiguous unless dim = -1)


# -- wrong versions, declared as mutants below ------------------------------------------
def _rows_then_pairs(formula):
    """An implementation applying ``formula(x1, x2, dim, eps)`` row-wise or all-pairs by broadcasting."""

    def wrong(self, x1, x2, dim, pairwise, eps):
        if pairwise:
            x1, x2, dim = x1.unsqueeze(-2), x2.unsqueeze(-3), -1  # (..., N, 1, D), (..., 1, M, D)
        return lambda: formula(x1, x2, dim, eps)

    return wrong


def _pairwise_transposed(self, x1, x2, dim, pairwise, eps):
    """Pairs x2's rows with x1's (the (M, N) result transposed back, columns reversed)."""
    if not pairwise:
        return lambda: cosine_fused(x1, x2, dim, eps)
    return lambda: cosine_pairwise_matmul(x2, x1, eps).mT.contiguous().flip(-1)


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
        replace_impl(
            "no_eps",
            "divides by the raw norms: a zero vector gives 0/0 = NaN",
            "naive",
            _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d))),
        ),
        replace_impl(
            "product_clamp",
            "clamps the product of the norms (the old documented formula)",
            "naive",
            _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d)).clamp_min(eps)),
        ),
        replace_impl(
            "eps_added",
            "adds eps to each norm instead of clamping",
            "fused",
            _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / ((a.norm(dim=d) + eps) * (b.norm(dim=d) + eps))),
        ),
        replace_impl("pairwise_transposed", "pairs x2's rows with x1's", "fused", _pairwise_transposed),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        if config.m:
            x1 = _vectors(config.shape, -1, g, dtype)
            x2 = _vectors((*config.shape[:-2], config.m, config.shape[-1]), -1, g, dtype)
            x2 = x2.flip(-2)  # zero / tiny rows of x2 at the end, not paired with x1's
        else:
            x1, x2 = _vectors(config.shape, config.dim, g, dtype), _vectors(config.shape, config.dim, g, dtype)
        return x1.to(device), x2.to(device), config.dim, config.m > 0, EPS

    def reference(self, x1, x2, dim, pairwise, eps):
        if pairwise:  # (..., N, 1, D) vs (..., 1, M, D) -> (..., N, M)
            # (..., N, 1, D) vs (..., 1, M, D) broadcast to (..., N, M, D), reduced to (..., N, M)
            return F.cosine_similarity(x1.unsqueeze(-2), x2.unsqueeze(-3), dim=-1, eps=eps)
        return F.cosine_similarity(x1, x2, dim=dim, eps=eps)

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        n_out = (
            math.prod(config.shape[:-1]) * config.m if config.m else math.prod(config.shape) // config.shape[config.dim]
        )
        n_in = math.prod(config.shape) + (
            math.prod(config.shape[:-2]) * config.m * config.shape[-1] if config.m else math.prod(config.shape)
        )
        return el * (n_in + n_out)

    def flops(self, config):
        if config.m:  # the dot products dominate: 2 D per output
            return 2 * math.prod(config.shape) * config.m
        return 6 * math.prod(config.shape)  # dot + two squared norms

    @impl(baseline=True)
    def torch_cosine(self, x1, x2, dim, pairwise, eps):
        return lambda: self.reference(x1, x2, dim, pairwise, eps)

    @impl
    def naive(self, x1, x2, dim, pairwise, eps):
        if pairwise:
            return lambda: cosine_naive(x1.unsqueeze(-2), x2.unsqueeze(-3), -1, eps)  # (..., N, M, D) products
        return lambda: cosine_naive(x1, x2, dim, eps)

    @impl
    def fused(self, x1, x2, dim, pairwise, eps):
        if pairwise:
            return lambda: cosine_pairwise_matmul(x1, x2, eps)
        return lambda: cosine_fused(x1, x2, dim, eps)

    def extra_checks(self, ctx):
        dev, dt = ctx.device, ctx.dtype
        u = torch.tensor([[0.6, 0.8, 0.0]], dtype=dt, device=dev)  # a unit vector
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
                    out = getattr(self, spec.method)(x1, x2, -1, pairwise, eps)()
                    ctx.expect(not bool(out.isnan().any()), f"{spec.name}: {name} gives NaN", name="no NaN")
                    ctx.assert_close(
                        out.reshape(()),
                        torch.tensor(want, dtype=dt, device=dev),  # (1,) or (1, 1) -> ()
                        name=f"eps rule: {name}",
                        where=f"{spec.name} pairwise={pairwise}",
                    )
