"""6.01 Scaled dot-product attention from scratch.

Compared: two hand-written forms of softmax(Q K^T / sqrt(D) + M) V (``kernels/layers/attention.py``)
against ``F.scaled_dot_product_attention`` (the reference and the baseline), dropout off,
on (B, H, T, D) tensors:

* ``naive``: the formula as written; materialises the (B, H, L, S) score and weight matrices.
* ``blocked``: FlashAttention's algorithm (Dao et al. 2022) in plain PyTorch: keys in
  blocks of 64, an online softmax (running max and denominator, rescaling the partial
  output when the max grows), so only an (L, 64) tile of scores is alive at a time.

Check (tiny, float32 and float64, 3 seeded trials per case): outputs equal torch's for every
mask of ``kernels.layers.masks`` (none, ``is_causal``, causal boolean, key padding as booleans
and as 0/-inf floats, a float bias, a fully masked query row), L != S and tails of the key
blocks; gradients of Q, K, V equal torch's; a mask with ``is_causal`` or mismatched D raises
ValueError. Peak memory at L = S = 32..256: the log-log slope must be <= 1.3 for ``blocked``
(linear) and >= 1.7 for ``naive`` (quadratic: the instrument can see the difference).

How memory is measured: ``harness.train.peak_memory_mb`` (on CPU the running sum of the
profiler's allocation and free events, the quantity ``torch.cuda.max_memory_allocated``
reports on a GPU; process RSS would lag the allocator).

Bench (cpu: B=1, H=4, D=64, L = S = 256..2048): time and peak memory against length, log axes.

Lesson: the score matrix is the memory problem, not the arithmetic: the naive form's peak
memory grows as L^2, the blocked one's as L, torch's CPU flash kernel stays far below both. The
blocked version does the naive one's FLOPs; at short lengths its Python loop costs more than it
saves, at long ones it wins because the naive one passes an (L, L) matrix through memory several
times while a 64-key tile stays in cache; torch's fused kernel also blocks the queries and runs
the loop in C++ (FlashAttention, Dao et al. 2022: memory linear in length, far fewer reads and
writes of GPU memory than standard attention).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.mutants import replace_impl
from harness.train import peak_memory_mb
from kernels.layers.attention import sdpa_blocked, sdpa_naive
from kernels.layers.attention_wrong import sdpa_blocked_no_rescale
from kernels.layers.masks import MASKS, loglog_slope, make_mask


@dataclasses.dataclass(frozen=True)
class SdpaConfig:
    """One attention call: query (B, H, L, D), key/value (B, H, S, D)."""

    batch: int
    """B: sequences"""
    heads: int
    """H: attention heads"""
    q_len: int
    """L: query positions"""
    kv_len: int
    """S: key/value positions"""
    head_dim: int
    """D: features per head (the scale is 1/sqrt(D))"""
    mask: str = "none"
    """one of MASKS: how queries are kept from keys"""
    block_size: int = 64
    """keys per step of the blocked implementation"""

    def label(self) -> str:
        return f"B={self.batch},H={self.heads},L={self.q_len},S={self.kv_len},D={self.head_dim},{self.mask}"


# -- the wrong versions (mutants) ------------------------------------------------------------
def _off_by_one(self, q, k, v, mask, causal, block):
    if causal:  # lets query i see key i + 1
        mask, causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(diagonal=1), False
    return lambda: sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal)


def _naive(**kw):
    """``naive`` as an implementation (with ``kw`` passed on)."""
    return lambda self, q, k, v, mask, causal, block: (
        lambda: sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal, **kw)
    )


@task("transformers.sdpa", seed="6.01", title="scaled dot-product attention from scratch")
class Sdpa(Operator):
    __doc__ = __doc__
    check_dtypes = (torch.float32, torch.float64)
    sizes = {
        "tiny": [SdpaConfig(2, 3, 21, 21, 16, m, block_size=8) for m in MASKS]
        + [SdpaConfig(2, 2, 5, 70, 8, "is_causal", 32), SdpaConfig(1, 2, 70, 23, 8, "padding_bool", 8)],
        "cpu": [SdpaConfig(1, 4, t, t, 64) for t in (256, 512, 1024, 2048)],
        "gpu": [SdpaConfig(4, 16, t, t, 64, block_size=256) for t in (512, 1024, 2048, 4096, 8192)],
    }
    #: lengths and shape of the peak-memory scaling check (tiny)
    memory_lengths = (32, 64, 128, 256)
    metrics = {
        f"{n}.memory_loglog_slope": f"{n}: slope of log peak memory against log L"
        for n in ("naive", "blocked", "torch_sdpa")
    }
    claims = (
        metric("blocked.memory_loglog_slope", "<=", 1.2, text="blocked: peak memory linear in L (slope <= 1.2)"),
        metric("naive.memory_loglog_slope", ">=", 1.8, text="naive: peak memory grows as L^2 (slope >= 1.8)"),
        speedup("blocked", over="naive", at_least=1.5, text="blocked >= 1.5x the naive form at the longest L"),
        speedup("torch_sdpa", over="blocked", at_least=1.5, text="torch's fused kernel >= 1.5x the Python-blocked one"),
    )
    mutants = (
        replace_impl("missing_scale", "no 1/sqrt(D) scale", "naive", _naive(scale=1.0)),
        replace_impl(
            "causal_off_by_one", "the causal mask lets query i see key i + 1", "naive", _off_by_one, match="is_causal"
        ),
        replace_impl(
            "blocked_no_rescale",
            "the online softmax never rescales when the max grows",
            "blocked",
            lambda self, *inputs: lambda: sdpa_blocked_no_rescale(*inputs),
        ),
        replace_impl(
            "blocked_materialises_scores",
            "the blocked version builds the whole score matrix",
            "blocked",
            _naive(),
            match="not linearly",
        ),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        B, H, L, S, D = config.batch, config.heads, config.q_len, config.kv_len, config.head_dim
        q = torch.randn(B, H, L, D, generator=g, dtype=dtype)
        k = torch.randn(B, H, S, D, generator=g, dtype=dtype)
        v = torch.randn(B, H, S, D, generator=g, dtype=dtype)
        mask, causal = make_mask(config.mask, B, L, S, g, dtype)
        mask = None if mask is None else mask.to(device)
        return q.to(device), k.to(device), v.to(device), mask, causal, config.block_size

    def reference(self, q, k, v, mask, causal, block):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)

    def flops(self, config):
        # QK^T and PV: 2 matmuls of 2*L*S*D each, per (batch, head)
        return 4 * config.batch * config.heads * config.q_len * config.kv_len * config.head_dim

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        return el * config.batch * config.heads * config.head_dim * (2 * config.q_len + 2 * config.kv_len)

    @impl(baseline=True)
    def torch_sdpa(self, q, k, v, mask, causal, block):
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)

    @impl
    def naive(self, q, k, v, mask, causal, block):
        return lambda: sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal)

    @impl
    def blocked(self, q, k, v, mask, causal, block):
        return lambda: sdpa_blocked(q, k, v, attn_mask=mask, is_causal=causal, block_size=block)

    # -- beyond equality of outputs ------------------------------------------------------
    def extra_checks(self, ctx):
        self._check_gradients(ctx)
        ctx.expect_raises(
            ValueError,
            lambda: sdpa_naive(*self._qkv(ctx, 4, 4), attn_mask=torch.ones(4, 4, dtype=torch.bool), is_causal=True),
            match="not both",
            name="mask and is_causal refused",
        )
        q, k, v = self._qkv(ctx, 4, 4)
        for fn in (sdpa_naive, sdpa_blocked):
            ctx.expect_raises(
                ValueError,
                lambda: fn(q, k[..., :3], v),
                match="last dim",
                name=f"{fn.__name__}: mismatched head dim refused",
            )
        if ctx.dtype == torch.float32:
            self._check_memory_scaling(ctx)

    def _qkv(self, ctx, L, S, H=2, D=8, requires_grad=False):
        g = ctx.generator(99)
        out = [torch.randn(2, H, n, D, generator=g, dtype=ctx.dtype).to(ctx.device) for n in (L, S, S)]
        return [t.requires_grad_(requires_grad) for t in out]

    def _check_gradients(self, ctx):
        for config in (SdpaConfig(2, 2, 29, 29, 8, "is_causal", 8), SdpaConfig(2, 2, 13, 41, 8, "padding_bool", 16)):
            q, k, v, mask, causal, block = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            w = torch.randn(q.shape[:-1] + v.shape[-1:], generator=ctx.generator(5), dtype=ctx.dtype).to(ctx.device)

            def grads(method):
                leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
                (method(*leaves, mask, causal, block)() * w).sum().backward()
                return [t.grad for t in leaves]

            want = grads(self.torch_sdpa)
            for name in ("naive", "blocked"):
                ctx.assert_close(
                    grads(getattr(self, name)), want, name=f"{name}: dQ, dK, dV", where=f"{name} [{config.label()}]"
                )

    def _check_memory_scaling(self, ctx):
        peaks = {}
        for name in ("naive", "blocked"):
            peaks[name] = []
            for n in self.memory_lengths:
                config = SdpaConfig(1, 2, n, n, 32, "none", 16)
                fn = getattr(self, name)(*self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed))
                peaks[name].append(peak_memory_mb(fn, ctx.device))
        slope = {name: loglog_slope(self.memory_lengths, p) for name, p in peaks.items()}
        detail = ", ".join(
            f"{name}: {[round(p, 3) for p in ps]} MB (slope {slope[name]:.2f})" for name, ps in peaks.items()
        )
        ctx.note(f"peak memory at L = S = {list(self.memory_lengths)}: {detail}")
        msg = f"naive attention's peak memory should grow as length^2, slope {slope['naive']:.2f}: the instrument"
        ctx.expect(
            slope["naive"] >= 1.7,
            f"{msg} is not seeing the score matrix ({detail})",
            name="naive peak memory is quadratic",
        )
        msg = f"blocked attention's peak memory grows as length^{slope['blocked']:.2f}, not linearly ({detail})"
        ctx.expect(slope["blocked"] <= 1.3, msg, name="blocked peak memory is linear")

    def bench(self, ctx):
        series = {s.name: ([], [], []) for s in ctx.implementations(self, bench=True)}
        for config in ctx.configs:
            for spec in ctx.implementations(self, bench=True):
                prepared = self.prepare(ctx, spec.name, config)
                peak = peak_memory_mb(prepared.fn, ctx.device)
                m = ctx.measure(spec.name, prepared, config=config, peak_mem_mb=peak)
                xs, ts, ps = series[spec.name]
                xs.append(config.q_len)
                ts.append(m.median_ms)
                ps.append(peak)
        for name, (xs, ts, ps) in series.items():
            for title, ys, unit in (("peak memory vs length", ps, "peak MB"), ("time vs length", ts, "ms per call")):
                ctx.curve(title, xs, ys, x_label="L = S (tokens)", y_label=unit, series=name, log_x=True, log_y=True)
            if len(xs) > 1:
                ctx.metric(f"{name}.memory_loglog_slope", loglog_slope(xs, ps))
