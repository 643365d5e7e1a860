"""6.04 Positional encoding by hand.

Compared: three ways to tell a Transformer where a token sits (``kernels/layers/positional.py``):

* ``sinusoidal``: the fixed table of Vaswani et al. (2017), PE[pos, 2i] = sin(pos / 10000^(2i/d)),
  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)), added to the embeddings;
* ``learned``: a trainable (max_len, d) table added the same way (BERT, GPT-2);
* ``rope``: rotary embeddings (Su et al. 2021): every adjacent feature pair of each query
  and key rotated by position * theta_i, theta_i = 10000^(-2i/D); nothing is added.

Check (tiny): the sinusoidal table equals the paper's formula evaluated entry by entry with
``math.sin``/``math.cos`` (float64 and float32); each module adds rows offset..offset+T-1 and
refuses positions past its table; the learned table's gradient reaches exactly the rows used; RoPE
equals the complex-number form (x[2i] + j x[2i+1]) e^{j m theta_i} (``rope_reference``, float64),
keeps norms, is the identity at position 0, and <RoPE(q, m), RoPE(k, n)> depends only on m - n.

Bench (cpu: B=8, d=512, H=8, T = 128..2048): time per call of each encoding of one (B, T, d)
activation (RoPE: of q and k) against length; parameters and the table's build time.

Lesson: where the position goes costs far more than how it is computed. Adding a table is one
memory-bound elementwise pass, learned or sinusoidal alike; the learned table also holds
max_len * d trainable parameters, the sinusoidal one none (built once, vectorised). RoPE
rotates q and k in every layer, far more than one add, yet small next to attention itself
(4 T^2 d FLOPs per sequence and layer); in exchange the score sees only m - n (Su et al. 2021).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant, replace_functions
from kernels.layers import positional_wrong as wrong
from kernels.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rope,
    apply_rope_half_split,
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
    metrics = {"sinusoidal.vectorised_speedup": "time of the formula entry by entry / the vectorised table, same table"}
    claims = (
        time_ratio("learned", to="sinusoidal", at_most=1.5, text="adding a learned table costs <= 1.5x a sinusoidal"),
        metric(
            "sinusoidal.vectorised_speedup",
            ">=",
            10,
            text="the vectorised sinusoidal table builds >= 10x faster than the formula entry by entry",
        ),
    )
    #: the implementations under test
    table_fn = staticmethod(sinusoidal_table)
    rope_fn = staticmethod(apply_rope)
    mutants = (
        replace_functions(
            "rope_mixed_pairing",
            "rotate-half pairing on an interleaved angle table",
            match="rope",
            rope_fn=wrong.rope_mixed_pairing,
        ),
        Mutant(
            "rope_mixed_pairing_property_only",
            "the same bug, seen by the relative-position property alone",
            {"rope_fn": staticmethod(wrong.rope_mixed_pairing), "_check_rope_formula": lambda self, ctx: None},
            match="depend only on m - n",
        ),
        # a valid RoPE (GPT-NeoX's pairs (i, i + D/2)), but not the paper's adjacent pairs
        replace_functions(
            "rope_half_split",
            "the half-split layout instead of the paper's pairs",
            match="complex-number formula",
            rope_fn=apply_rope_half_split,
        ),
        *(
            replace_functions(name, what, match="sinusoidal table = formula", table_fn=fn)
            for name, what, fn in (
                ("exponent_i_over_d", "exponent i/d instead of 2i/d", wrong.table_i_over_d),
                ("sin_cos_swapped", "sin and cos swapped", wrong.table_sin_cos_swapped),
            )
        ),
    )

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
                name, where = f"sinusoidal table = formula ({dtype})", f"max_len={max_len}, d={d}"
                ctx.assert_close(got.cpu(), want.to(dtype), name=name, where=where, **tol)
        pe = SinusoidalPositionalEncoding(64, 8).to(ctx.device)
        x = torch.randn(3, 10, 8, generator=ctx.generator(1)).to(ctx.device)
        want = x + sinusoidal_reference(64, 8)[5:15].float().to(ctx.device)
        ctx.assert_close(pe(x, offset=5), want, name="sinusoidal module adds rows offset..offset+T-1")
        ctx.expect_raises(ValueError, lambda: self.table_fn(10, 7), match="even", name="odd width refused")
        past = lambda: pe(x, offset=60)
        ctx.expect_raises(IndexError, past, match="max_len", name="sinusoidal: past the table refused")

    def _check_learned(self, ctx):
        torch.manual_seed(ctx.rng_seed)
        emb = LearnedPositionalEmbedding(20, 8).to(ctx.device)
        x = torch.randn(2, 6, 8, generator=ctx.generator(2)).to(ctx.device)
        out = emb(x, offset=3)
        ctx.assert_close(out, x + emb.weight[3:9].detach(), name="learned module adds rows offset..offset+T-1")
        out.sum().backward()
        used = (torch.arange(20) >= 3) & (torch.arange(20) < 9)  # rows of positions 3..8
        g = emb.weight.grad.cpu()
        ok = bool((g[used] == 2.0).all()) and bool((g[~used] == 0).all())
        msg = "learned table: the gradient should reach exactly the rows of the positions used (2 sequences each)"
        ctx.expect(ok, msg, name="learned: gradient reaches the used rows only")
        n = sum(p.numel() for p in emb.parameters())
        msg = "learned table should hold max_len * d parameters"
        ctx.expect(n == 20 * 8, msg, name="learned: max_len * d parameters")
        past = lambda: emb(x, offset=15)
        ctx.expect_raises(IndexError, past, match="learned positions", name="learned: past max_len refused")

    def _check_rope_formula(self, ctx):
        D, x = 16, torch.randn(2, 3, 40, 16, generator=ctx.generator(3), dtype=torch.float64)  # (B, H, T, D)
        for offset in (0, 37):
            pos = torch.arange(offset, offset + 40)
            cos, sin = rope_angles(pos, D, dtype=torch.float64)
            got = self.rope_fn(x, cos, sin)
            want = rope_reference(x, pos)
            ctx.assert_close(got, want, name="rope = complex-number formula", where=f"offset {offset}")
            ctx.assert_close(got.norm(dim=-1), x.norm(dim=-1), name="rope keeps norms")
        cos0, sin0 = rope_angles(torch.zeros(1, dtype=torch.int64), D, dtype=torch.float64)
        got0 = self.rope_fn(x[..., :1, :], cos0, sin0)
        ctx.assert_close(got0, x[..., :1, :], name="rope at position 0 is the identity")
        past = lambda: RotaryEmbedding(D, 32)(x[..., :8, :].float(), offset=30)
        ctx.expect_raises(IndexError, past, match="max_len", name="rope: past max_len refused")
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
            msg = f"rope: <RoPE(q, m), RoPE(k, n)> should depend only on m - n = {shift}, got {scores} at bases"
            ctx.expect(spread <= 1e-9 * max(1.0, abs(scores[0])), msg, name="rope: score depends only on m - n")
        distinct = len({round(v, 6) for v in by_shift.values()}) == len(by_shift)
        msg = f"rope: different offsets should give different scores, got {by_shift}"
        ctx.expect(distinct, msg, name="rope: score changes with m - n")

    def prepare(self, ctx, impl, config):
        B, T, d, H = config.batch, config.seq_len, config.d_model, config.heads
        g = ctx.generator(4)
        items = B * T
        if impl == "rope":
            q = torch.randn(B, H, T, d // H, generator=g).to(ctx.device, ctx.dtype)  # (B, H, T, D)
            k = torch.randn(B, H, T, d // H, generator=g).to(ctx.device, ctx.dtype)
            rot = RotaryEmbedding(d // H, T).to(ctx.device)
            nbytes = 4 * q.numel() * q.element_size()
            return Prepared(fn=lambda: (rot(q), rot(k)), items=items, item_unit="tokens", bytes=nbytes)
        x = torch.randn(B, T, d, generator=g).to(ctx.device, ctx.dtype)  # (B, T, d)
        module = SinusoidalPositionalEncoding(T, d) if impl == "sinusoidal" else LearnedPositionalEmbedding(T, d)
        module = module.to(ctx.device, ctx.dtype)
        nbytes = (2 * x.numel() + T * d) * x.element_size()
        return Prepared(fn=torch.no_grad()(lambda: module(x)), items=items, item_unit="tokens", bytes=nbytes)

    def bench(self, ctx):
        pts = {v: [] for v in self.variants}
        for config in ctx.configs:
            for v in self.variants:
                m = ctx.measure(v, self.prepare(ctx, v, config), config=config)
                pts[v].append((config.seq_len, m.median_ms))
        for v, xy in pts.items():
            xs, ys = [p[0] for p in xy], [p[1] for p in xy]
            ctx.curve(
                "time per call vs length",
                xs,
                ys,
                x_label="T (positions)",
                y_label="ms",
                series=v,
                log_x=True,
                log_y=True,
            )
        last = ctx.configs[-1]
        d, T = last.d_model, last.seq_len
        for v, n in (("learned", T * d), ("sinusoidal", 0), ("rope", 0)):
            ctx.metric(f"{v}.params", n)
        t0 = time.perf_counter()
        for _ in range(10):
            sinusoidal_table(T, d)
        build_ms = (time.perf_counter() - t0) / 10 * 1e3
        ctx.metric("sinusoidal.table_build_ms", build_ms)
        t0 = time.perf_counter()
        sinusoidal_reference(min(T, 256), d)
        per_256 = (time.perf_counter() - t0) * 1e3
        ctx.metric("sinusoidal.python_formula_ms_per_256_rows", per_256)
        ctx.metric("sinusoidal.vectorised_speedup", per_256 * T / min(T, 256) / build_ms)
        ctx.note(
            f"table built once per model: {T} x {d} floats = {T * d * 4 / 1e6:.1f} MB in float32; attention"
            f" at this size costs ~{4 * T * T * d / 1e9:.1f} GFLOP per sequence and layer"
        )
