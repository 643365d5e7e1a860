"""5.05 Attention for RNNs (Bahdanau additive, Luong multiplicative).

Compared: the GRU encoder-decoder of 5.04 (``models.seq2seq``) three ways on the same
data, seed, widths and number of steps: no attention (the source squeezed through the
final state), Bahdanau et al. (2015) additive attention (score v^T tanh(W_q h_{t-1} +
W_k e_i), context fed into the decoder RNN) and Luong et al. (2015) multiplicative
attention ("general" score h_t^T W_a e_i, context combined after the RNN).

Check (tiny):

* the attention modules (additive; multiplicative "general" and "dot"): on random
  queries, keys and source lengths 1..S, each row of weights sums to 1, every padded
  position gets exactly 0 (masked with -inf before the softmax, not multiplied after),
  weights and context equal an independent per-row computation that never sees the
  padding, and replacing padded keys with garbage changes nothing;
* at an equal budget (``steps`` Adam steps of ``batch_size`` pairs, same seed) both
  attention models translate held-out sentences of the toy language exactly (vs
  ``toy_translate``) at least ``min_margin`` more often than the model without.
  Measured over seeds 0-7 at the tiny budget (120 steps of 32 pairs, H = 32): no
  attention 0-1.0% exact, Bahdanau 87.5-100%, Luong 53-99.5%; the smallest margin
  was 52 points (Luong, seed 5), against the 30 demanded.

An attention that masks after the softmax, one that normalises over the wrong axis, and
a decoder that ignores its context each fail it (tests/tasks/test_rnn_rnn_attention.py).

Bench: the three loss curves in one chart, exact-match and token accuracy of each, and
the time of one training step of each (the overhead of attention: scores over S source
positions at every decoder step, plus Bahdanau's step-by-step dependence of the RNN
input on the context).

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.rnn_attention --no-save``; 6,000 pairs of 5-9 words, GRU 64, 200 steps
of 32): exact match none 2.3% (token accuracy 54%), Bahdanau 99.3%, Luong 95.7%; training
took 4.4 s, 8.9 s (+104%) and 5.6 s (+28%). Without attention the decoder must carry
the whole source in 64 numbers and reorder it from memory; with it each output word
looks up its source word. Luong's costs less than Bahdanau's because its RNN input does
not depend on the context, and its score is one matmul instead of a tanh layer.
"""

from __future__ import annotations

import dataclasses
import importlib

import torch

from harness import Comparison, Prepared, task
from harness.data import toy_translate
from models.seq2seq import AdditiveAttention, MultiplicativeAttention

_s2s = importlib.import_module("drills_tasks.rnn.seq2seq")  # 5.04: data, training and decoding
TranslationConfig = _s2s.TranslationConfig


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
    """One equal-budget comparison: every variant gets ``translation``'s data and budget."""

    translation: TranslationConfig
    """data, widths, steps, batch size and learning rate shared by all variants"""
    min_margin: float = 0.3
    """exact-match share by which each attention variant must beat no attention, in [0, 1]"""

    def label(self) -> str:
        return self.translation.label().replace(f"attn={self.translation.attention},", "")


def _reference_attention(scores_fn, query, keys, lengths):
    """Per-row weights and context computed on the real positions only (no mask at all)."""
    B, S, _ = keys.shape
    weights = torch.zeros(B, S, dtype=keys.dtype, device=keys.device)
    ctx = torch.zeros(B, keys.shape[-1], dtype=keys.dtype, device=keys.device)
    for b in range(B):
        n = int(lengths[b])
        w = torch.softmax(scores_fn(query[b : b + 1], keys[b : b + 1, :n])[0], dim=-1)  # (n,)
        weights[b, :n] = w
        ctx[b] = w @ keys[b, :n]
    return weights, ctx


@task("rnn.rnn_attention", seed="5.05", title="attention for RNNs (Bahdanau/Luong)")
class RnnAttention(Comparison):
    __doc__ = __doc__
    variants = ("none", "bahdanau", "luong")
    sizes = {
        "tiny": AttentionConfig(TranslationConfig(n_train=2000, n_test=200, max_adjectives=1, hidden=32, steps=120)),
        "cpu": AttentionConfig(
            TranslationConfig(n_train=6000, n_test=300, max_adjectives=2, hidden=64, steps=200, lr=5e-3)
        ),
        "gpu": AttentionConfig(
            TranslationConfig(
                n_train=50000, n_test=2000, max_adjectives=3, hidden=256, steps=3000, lr=1e-3, batch_size=256
            )
        ),
    }

    #: attention modules under test: name -> factory(query_dim, key_dim) (tests plant broken ones)
    attention_modules = {
        "bahdanau (additive)": lambda dq, dk: AdditiveAttention(dq, dk, 16),
        "luong (general)": lambda dq, dk: MultiplicativeAttention(dq, dk, "general"),
        "luong (dot)": lambda dq, dk: MultiplicativeAttention(dq, dk, "dot"),
    }

    def __init__(self) -> None:
        self.s2s = _s2s.Seq2seqTranslation()

    # -- check: the attention modules ----------------------------------------------------------
    def check_weights(self, ctx) -> None:
        B, S, D = 6, 9, 8
        for trial in range(3):
            seed = ctx.rng_seed + trial
            g = torch.Generator().manual_seed(seed)
            dev = ctx.device
            lengths = torch.tensor([S, 1, 4, 7, 2, S - 1])
            query = torch.randn(B, D, generator=g, dtype=ctx.dtype).to(dev)
            keys = torch.randn(B, S, D, generator=g, dtype=ctx.dtype).to(dev)
            mask = (torch.arange(S)[None, :] < lengths[:, None]).to(dev)  # (B, S)
            noise = 1e3 * torch.randn(B, S, D, generator=g, dtype=ctx.dtype).to(dev)
            garbage = torch.where(mask[..., None], keys, noise)
            for name, make in self.attention_modules.items():
                torch.manual_seed(seed)
                attn = make(D, D).to(dev, ctx.dtype)
                where = f"{name}, seed {seed}"
                with torch.no_grad():
                    context, weights = attn(query, keys, mask)
                    ctx.assert_close(
                        weights.sum(-1),
                        torch.ones(B, dtype=ctx.dtype, device=dev),
                        name="weights sum to 1",
                        where=where,
                    )
                    ctx.expect(
                        bool((weights[~mask] == 0).all()),
                        f"{where}: padded positions get weight {weights[~mask].abs().max().item():.3g}, not exactly 0",
                        name="padded positions get exactly 0",
                    )

                    def scores_fn(q, k, attn=attn):
                        return torch.log(attn(q, k, torch.ones(k.shape[:2], dtype=torch.bool, device=k.device))[1])

                    want_w, want_c = _reference_attention(scores_fn, query, keys, lengths)
                    ctx.assert_close(weights, want_w, name="weights = per-row softmax over real positions", where=where)
                    ctx.assert_close(context, want_c, name="context = weights @ values", where=where)
                    ctx.assert_close(
                        attn(query, garbage, mask),
                        (context, weights),
                        rtol=0,
                        atol=0,
                        name="padded keys change nothing",
                        where=where,
                    )

    # -- check: attention improves translation ---------------------------------------------------
    def run_variant(self, ctx, cfg: AttentionConfig, variant: str, seed: int, data=None):
        """Train ``variant`` on the shared data/budget; (exact, token acc, losses, seconds, tokens, model)."""
        t = cfg.translation
        vocab, train, test, _ = data or self.s2s.data(t, seed)
        model, losses, seconds, tokens = self.s2s.train(ctx, t, vocab, train, variant, seed)
        refs = [toy_translate(s) for s in test.pairs.sources] if test.pairs.synthetic else test.pairs.targets
        exact, tok = self.s2s.score(self.s2s.translate(model, vocab, test, ctx.device), refs)
        return exact, tok, losses, seconds, tokens, model

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_weights(ctx)
        data = self.s2s.data(cfg.translation, ctx.rng_seed)
        exact = {v: self.run_variant(ctx, cfg, v, ctx.rng_seed, data)[0] for v in self.variants}
        for v, e in exact.items():
            ctx.metric(f"check_exact_match.{v}", e)
        for v in ("bahdanau", "luong"):
            ctx.expect(
                exact[v] - exact["none"] >= cfg.min_margin,
                f"{v} attention translated {exact[v]:.1%} exactly, no attention {exact['none']:.1%}: margin "
                f"below {cfg.min_margin:.0%} at an equal budget of {cfg.translation.steps} steps",
                name=f"{v} beats no attention by >= {cfg.min_margin}",
            )

    # -- bench -------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: AttentionConfig) -> Prepared:
        return self.s2s.prepare(ctx, "train_step", dataclasses.replace(config.translation, attention=impl))

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.s2s.data(cfg.translation, ctx.rng_seed)
        rows = []
        for v in self.variants:
            exact, tok, losses, seconds, tokens, _ = self.run_variant(ctx, cfg, v, ctx.rng_seed, data)
            ctx.curve(
                "train loss",
                list(range(1, len(losses) + 1)),
                losses,
                y_label="masked cross-entropy",
                series=v,
                log_y=True,
            )
            ctx.metric(f"{v}.exact_match", exact)
            ctx.metric(f"{v}.token_accuracy", tok)
            ctx.metric(f"{v}.train_tokens_per_s", tokens / seconds)
            rows.append(
                {
                    "variant": v,
                    "exact_match": round(exact, 4),
                    "token_accuracy": round(tok, 4),
                    "train_s": round(seconds, 2),
                    "final_loss": round(sum(losses[-10:]) / 10, 4),
                }
            )
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
        ctx.table("equal budget: accuracy and time per variant", rows)
