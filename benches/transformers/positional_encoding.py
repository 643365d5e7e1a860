"""6.04 Positional encoding by hand.

Compared: three ways to tell a Transformer where a token sits (``kernels/layers/positional.py``):

* ``sinusoidal``: the fixed table of Vaswani et al. (2017), PE[pos, 2i] = sin(pos / 10000^(2i/d)),
  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)), added to the embeddings;
* ``learned``: a trainable (max_len, d) table added the same way (BERT, GPT-2);
* ``rope``: rotary embeddings (Su et al. 2021): every adjacent feature pair of each query
  and key rotated by position * theta_i, theta_i = 10000^(-2i/D); nothing is added.

Check (tiny):

* sinusoidal: the vectorised table equals the paper's formula evaluated position by
  position with ``math.sin``/``math.cos`` (float64, and the float32 table against it),
  for d = 2, 6, 64 and up to 300 positions; the module adds rows offset..offset+T-1;
  an odd width raises ValueError, positions past the table IndexError;
* learned: adds its rows; the gradient reaches exactly the rows of the positions used;
  max_len * d parameters; positions past max_len raise IndexError;
* rope: equals the paper's complex-number form (x[2i] + j x[2i+1]) e^{j m theta_i}
  (``kernels.layers.positional.rope_reference``, float64) at offsets 0 and 37; keeps every
  vector's norm; position 0 is the identity; and the relative-position property: for
  random q, k the score <RoPE(q, m), RoPE(k, n)> is the same for every (m, n) with the same
  m - n (offsets -9, 0, 3, 17, 250 at base positions 0, 5, 64, 1000; float64 to 1e-9),
  while different offsets give different scores.

Bench (cost, cpu: B=8, d=512 (H=8, D=64), T = 128..2048): time per call of each encoding
applied to one (B, T, d) activation (RoPE: to q and k, the two tensors it touches),
against length; the metrics also give each variant's parameters and the time to build the
sinusoidal table.

Lesson: where the position goes costs far more than how it is computed. Adding a table is one
memory-bound elementwise pass: at B=8, T=2048, d=512 sinusoidal and learned both take 8.7 ms (at
T=128: 0.08 and 0.16 ms); the learned table also holds max_len * d = 1,048,576 trainable
parameters at T=2048, the sinusoidal one none (built once in 13 ms; the paper's formula
evaluated entry by entry in Python takes 50 ms per 256 rows). RoPE rotates q and k in every
layer through strided even/odd views and a stack: 7.1 ms at T=128 and 393 ms at T=2048, 45-85x
the additive tables, yet still small next to attention itself (~8.6 GFLOP per sequence and layer
at T=2048); in exchange the attention score sees only m - n, which the check verifies to 1e-9
for offsets up to 250 at positions up to 1,250. Measured with ``OMP_NUM_THREADS=1 drills bench
--task transformers.positional_encoding`` (cpu preset, float32) on the shared 2-core AMD EPYC
VM, torch 2.13 CPU, load average ~8 from other jobs: wall-clock figures are inflated and noisy
(the run record flags IQR/median > 10%), ratios and counts are the robust part.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from harness import Comparison, Prepared, task
from kernels.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rope,
    rope_angles,
    rope_reference,
    sinusoidal_reference,
    sinusoidal_table,
)


@dataclasses.dataclass(frozen=True)
class PositionalConfig:
    """One activation (B, T, d) to encode; RoPE sees it as (B, H, T, d/H) queries and keys."""

    batch: int
    """B: sequences"""
    seq_len: int
    """T: positions encoded"""
    d_model: int
    """d: model width (even)"""
    heads: int = 8
    """H: RoPE rotates each head's D = d/H features (D even)"""

    def label(self) -> str:
        return f"B={self.batch},T={self.seq_len},d={self.d_model},H={self.heads}"


@task("transformers.positional_encoding", seed="6.04", title="positional encoding by hand")
class PositionalEncoding(Comparison):
    __doc__ = __doc__
    variants = ("sinusoidal", "learned", "rope")
    sizes = {
        "tiny": PositionalConfig(2, 16, 32, heads=4),
        "cpu": [PositionalConfig(8, t, 512) for t in (128, 256, 512, 1024, 2048)],
        "gpu": [PositionalConfig(32, t, 1024, heads=16) for t in (512, 1024, 2048, 4096, 8192)],
    }
    #: the implementations under test (tests plant broken ones here)
    table_fn = staticmethod(sinusoidal_table)
    rope_fn = staticmethod(apply_rope)

    def check(self, ctx):
        self._check_sinusoidal(ctx)
        self._check_learned(ctx)
        self._check_rope_formula(ctx)
        self._check_rope_relative(ctx)

    def _check_sinusoidal(self, ctx):
        for max_len, d in ((300, 64), (50, 6), (9, 2)):
            want = sinusoidal_reference(max_len, d)  # (T, d) float64, math.sin/cos per entry
            for dtype in (torch.float64, torch.float32):
                got = self.table_fn(max_len, d, dtype=dtype)
                # float64: the two differ only by rounding of pow/sin (~1e-14 at position 300)
                tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
                ctx.assert_close(
                    got.cpu(),
                    want.to(dtype),
                    name=f"sinusoidal table = formula ({dtype})",
                    where=f"max_len={max_len}, d={d}",
                    **tol,
                )
        pe = SinusoidalPositionalEncoding(64, 8).to(ctx.device)
        x = torch.randn(3, 10, 8, generator=ctx.generator(1)).to(ctx.device)
        ctx.assert_close(
            pe(x, offset=5),
            x + sinusoidal_reference(64, 8)[5:15].float().to(ctx.device),
            name="sinusoidal module adds rows offset..offset+T-1",
        )
        ctx.expect_raises(ValueError, lambda: self.table_fn(10, 7), match="even", name="odd width refused")
        ctx.expect_raises(
            IndexError, lambda: pe(x, offset=60), match="max_len", name="sinusoidal: past the table refused"
        )

    def _check_learned(self, ctx):
        torch.manual_seed(ctx.rng_seed)
        emb = LearnedPositionalEmbedding(20, 8).to(ctx.device)
        x = torch.randn(2, 6, 8, generator=ctx.generator(2)).to(ctx.device)
        out = emb(x, offset=3)
        ctx.assert_close(out, x + emb.weight[3:9].detach(), name="learned module adds rows offset..offset+T-1")
        out.sum().backward()
        used = torch.zeros(20, dtype=torch.bool)
        used[3:9] = True
        g = emb.weight.grad.cpu()
        ctx.expect(
            bool((g[used] == 2.0).all()) and bool((g[~used] == 0).all()),
            "learned table: the gradient should reach exactly the rows of the positions used (2 sequences each)",
            name="learned: gradient reaches the used rows only",
        )
        ctx.expect(
            sum(p.numel() for p in emb.parameters()) == 20 * 8,
            "learned table should hold max_len * d parameters",
            name="learned: max_len * d parameters",
        )
        ctx.expect_raises(
            IndexError, lambda: emb(x, offset=15), match="learned positions", name="learned: past max_len refused"
        )

    def _check_rope_formula(self, ctx):
        g = ctx.generator(3)
        D = 16
        x = torch.randn(2, 3, 40, D, generator=g, dtype=torch.float64)  # (B, H, T, D)
        for offset in (0, 37):
            pos = torch.arange(offset, offset + 40)
            cos, sin = rope_angles(pos, D, dtype=torch.float64)
            got = self.rope_fn(x, cos, sin)
            ctx.assert_close(
                got, rope_reference(x, pos), name="rope = complex-number formula", where=f"offset {offset}"
            )
            ctx.assert_close(got.norm(dim=-1), x.norm(dim=-1), name="rope keeps norms")
        cos0, sin0 = rope_angles(torch.zeros(1, dtype=torch.int64), D, dtype=torch.float64)
        ctx.assert_close(
            self.rope_fn(x[..., :1, :], cos0, sin0), x[..., :1, :], name="rope at position 0 is the identity"
        )
        rot = RotaryEmbedding(D, 32)
        ctx.expect_raises(
            IndexError,
            lambda: rot(x[..., :8, :].float(), offset=30),
            match="max_len",
            name="rope: past max_len refused",
        )
        ctx.expect_raises(ValueError, lambda: rope_angles(4, 7), match="even", name="rope: odd head dim refused")

    def _check_rope_relative(self, ctx):
        D = 16
        q, k = torch.randn(2, D, generator=ctx.generator(4), dtype=torch.float64)

        def score(m: int, n: int) -> float:
            cm, sm = rope_angles(torch.tensor([m]), D, dtype=torch.float64)
            cn, sn = rope_angles(torch.tensor([n]), D, dtype=torch.float64)
            return float((self.rope_fn(q[None], cm, sm) * self.rope_fn(k[None], cn, sn)).sum())

        by_shift = {}
        for shift in (-9, 0, 3, 17, 250):
            scores = [score(base + max(shift, 0), base + max(-shift, 0)) for base in (0, 5, 64, 1000)]
            by_shift[shift] = scores[0]
            spread = max(scores) - min(scores)
            ctx.expect(
                spread <= 1e-9 * max(1.0, abs(scores[0])),
                f"rope: <RoPE(q, m), RoPE(k, n)> should depend only on m - n = {shift}, got {scores} at base "
                "positions 0, 5, 64, 1000",
                name="rope: score depends only on m - n",
            )
        distinct = len({round(v, 6) for v in by_shift.values()})
        ctx.expect(
            distinct == len(by_shift),
            f"rope: different offsets should give different scores, got {by_shift}",
            name="rope: score changes with m - n",
        )

    # -- cost ----------------------------------------------------------------------------------
    def prepare(self, ctx, impl, config):
        B, T, d, H = config.batch, config.seq_len, config.d_model, config.heads
        g = ctx.generator(4)
        items = B * T
        if impl == "rope":
            q = torch.randn(B, H, T, d // H, generator=g).to(ctx.device, ctx.dtype)  # (B, H, T, D)
            k = torch.randn(B, H, T, d // H, generator=g).to(ctx.device, ctx.dtype)
            rot = RotaryEmbedding(d // H, T).to(ctx.device)
            return Prepared(
                fn=lambda: (rot(q), rot(k)), items=items, item_unit="tokens", bytes=4 * q.numel() * q.element_size()
            )
        x = torch.randn(B, T, d, generator=g).to(ctx.device, ctx.dtype)  # (B, T, d)
        module = SinusoidalPositionalEncoding(T, d) if impl == "sinusoidal" else LearnedPositionalEmbedding(T, d)
        module = module.to(ctx.device, ctx.dtype)
        return Prepared(
            fn=torch.no_grad()(lambda: module(x)),
            items=items,
            item_unit="tokens",
            bytes=(2 * x.numel() + T * d) * x.element_size(),
        )

    def bench(self, ctx):
        pts = {v: [] for v in self.variants}
        for config in ctx.configs:
            for v in self.variants:
                m = ctx.measure(v, self.prepare(ctx, v, config), config=config)
                pts[v].append((config.seq_len, m.median_ms))
        for v, xy in pts.items():
            ctx.curve(
                "time per call vs length",
                [p[0] for p in xy],
                [p[1] for p in xy],
                x_label="T (positions)",
                y_label="ms",
                series=v,
                log_x=True,
                log_y=True,
            )
        last = ctx.configs[-1]
        d, T = last.d_model, last.seq_len
        ctx.metric("learned.params", T * d)
        ctx.metric("sinusoidal.params", 0)
        ctx.metric("rope.params", 0)
        t0 = time.perf_counter()
        for _ in range(10):
            sinusoidal_table(T, d)
        ctx.metric("sinusoidal.table_build_ms", (time.perf_counter() - t0) / 10 * 1e3)
        t0 = time.perf_counter()
        sinusoidal_reference(min(T, 256), d)
        ctx.metric("sinusoidal.python_formula_ms_per_256_rows", (time.perf_counter() - t0) * 1e3)
        ctx.note(
            f"table built once per model: {T} x {d} floats = {T * d * 4 / 1e6:.1f} MB in float32; "
            f"attention at this size costs ~{4 * T * T * d / 1e9:.1f} GFLOP per sequence and layer"
        )
