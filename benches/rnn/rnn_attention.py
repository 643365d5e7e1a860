"""5.05 Attention for RNNs (Bahdanau additive, Luong multiplicative).

Compared: the GRU encoder-decoder of 5.04 (``models.seq2seq``) three ways on the same data,
seed, widths and steps: no attention (the source squeezed through the final state),
Bahdanau et al. (2015) additive attention (score v^T tanh(W_q h_{t-1} + W_k e_i), context fed
into the decoder RNN) and Luong et al. (2015) multiplicative attention ("general" score
h_t^T W_a e_i, context combined after the RNN).

Check (tiny):

* each attention module (additive; multiplicative "general" and "dot"), on random source
  lengths 1..S: rows of weights sum to 1, padded positions get exactly 0 (-inf before the
  softmax, not a product after), weights and context equal a per-row computation that never
  sees the padding, and garbage in the padded keys changes nothing;
* at an equal budget (``steps`` Adam steps of ``batch_size`` pairs, same seed) both
  attention models translate held-out sentences of the toy language exactly (vs
  ``toy_translate``) at least ``min_margin`` more often than the model without.
  Measured over seeds 0-7 at the tiny budget (120 steps of 32 pairs, H = 32): no
  attention 0-1.0% exact, Bahdanau 87.5-100%, Luong 53-99.5%; the smallest margin
  was 52 points (Luong, seed 5), against the 30 demanded.

Bench: the three loss curves, exact-match and token accuracy of each, the time of one
training step of each (attention scores S source positions at every decoder step), and the
attention map of each trained attention model on a held-out sentence.

Lesson: without attention the decoder must carry the whole source in H numbers and reorder
it from memory; with it each output word looks up its source word (the maps: one bright cell
per output word, off the diagonal where the toy language reorders). Luong's costs less than
Bahdanau's: its RNN input does not depend on the context, its score is one matmul.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup, time_ratio
from harness.data import toy_translate
from harness.mutants import Mutant
from harness.train_text import (
    TranslationConfig,
    attention_map,
    build_seq2seq,
    load_encoded,
    score,
    seq2seq_batch,
    seq2seq_step,
    train_seq2seq,
    translate,
)
from models.seq2seq import AdditiveAttention, MultiplicativeAttention
from models.seq2seq_wrong import MaskAfterSoftmax, NoMask, SoftmaxOverBatch


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
    """One equal-budget comparison: every variant gets ``translation``'s data and budget."""

    translation: TranslationConfig
    """data, widths, steps, batch size and learning rate shared by all variants"""
    min_margin: float = 0.3
    """exact-match share by which each attention variant must beat no attention, in [0, 1]"""

    def label(self) -> str:
        return self.translation.label().replace(f"attn={self.translation.attention},", "")


def _reference_attention(attn, query, keys, lengths):
    """Per-row weights and context computed on the real positions only (no mask at all).

    The scores come from ``attn`` run on one unpadded row, read back as the log of its weights
    (equal to the scores up to a constant per row, which the softmax here cancels)."""
    B, S, _ = keys.shape
    weights = torch.zeros(B, S, dtype=keys.dtype, device=keys.device)
    ctx = torch.zeros(B, keys.shape[-1], dtype=keys.dtype, device=keys.device)
    for b in range(B):
        n = int(lengths[b])
        everything = torch.ones(1, n, dtype=torch.bool, device=keys.device)  # (1, n): no padding to mask
        scores = torch.log(attn(query[b : b + 1], keys[b : b + 1, :n], everything)[1][0])  # (n,) + a constant
        w = torch.softmax(scores, dim=-1)  # (n,)
        weights[b, :n], ctx[b] = w, w @ keys[b, :n]
    return weights, ctx


MODULES = {
    "bahdanau (additive)": lambda dq, dk: AdditiveAttention(dq, dk, 16),
    "luong (general)": lambda dq, dk: MultiplicativeAttention(dq, dk, "general"),
    "luong (dot)": lambda dq, dk: MultiplicativeAttention(dq, dk, "dot"),
}


def _planted(name: str, factory) -> dict:
    return {"attention_modules": {**MODULES, name: factory}}


def _context_ignored(self, ctx, cfg, variant, seed, data=None):
    """Every variant silently trains the attention-free model (a decoder that ignores its context)."""
    return RnnAttention.run_variant(self, ctx, cfg, "none", seed, data)


@task("rnn.rnn_attention", seed="5.05", title="attention for RNNs (Bahdanau/Luong)")
class RnnAttention(Comparison):
    __doc__ = __doc__
    variants = ("none", "bahdanau", "luong")
    sizes = {
        "tiny": AttentionConfig(TranslationConfig(n_train=2000, n_test=200, max_adjectives=1, hidden=32, steps=120)),
        "cpu": AttentionConfig(TranslationConfig(6000, 300, max_adjectives=2, hidden=64, steps=200, lr=5e-3)),
        "gpu": AttentionConfig(TranslationConfig(50000, 2000, 3, hidden=256, steps=3000, lr=1e-3, batch_size=256)),
    }
    metrics = {
        "attention_gain": "exact-match share of the weaker attention variant minus that of no attention",
        **{f"{v}.exact_match": f"{v}: held-out sentences translated exactly, share" for v in variants},
    }
    claims = (
        metric("attention_gain", ">=", 0.5, text="both attentions translate >= 50 points more sentences exactly"),
        metric("none.exact_match", "<=", 0.2, text="without attention <= 20 % exact at the same budget"),
        time_ratio("bahdanau", to="none", at_most=3.0, text="a Bahdanau training step costs <= 3x one without"),
        speedup("luong", over="bahdanau", at_least=1.1, text="a Luong training step is >= 1.1x faster than Bahdanau's"),
    )
    #: attention modules under test: name -> factory(query_dim, key_dim)
    attention_modules = MODULES
    mutants = (
        Mutant(
            "mask_after_softmax",
            "zeroes padded weights after the softmax (rows no longer sum to 1)",
            _planted("luong (general)", MaskAfterSoftmax),
            match="weights sum to 1",
        ),
        Mutant(
            "no_mask",
            "padding takes part in the softmax",
            _planted("bahdanau (additive)", lambda dq, dk: NoMask(dq, dk, 16)),
            match="padded positions",
        ),
        Mutant(
            "softmax_over_batch",
            "softmax over the batch axis",
            _planted("luong (dot)", lambda dq, dk: SoftmaxOverBatch(dq, dk, "dot")),
            match="weights sum to 1",
        ),
        Mutant(
            "context_ignored",
            "every variant trains the attention-free decoder",
            {
                "run_variant": _context_ignored,
                "sizes": {"tiny": AttentionConfig(dataclasses.replace(sizes["tiny"].translation, steps=10))},
            },
            match="margin below",
        ),
    )

    def check_weights(self, ctx) -> None:
        B, S, D, dev = 6, 9, 8, ctx.device
        for seed in range(ctx.rng_seed, ctx.rng_seed + 3):
            g = torch.Generator().manual_seed(seed)
            lengths = torch.tensor([S, 1, 4, 7, 2, S - 1])
            query = torch.randn(B, D, generator=g, dtype=ctx.dtype).to(dev)
            keys = torch.randn(B, S, D, generator=g, dtype=ctx.dtype).to(dev)
            mask = (torch.arange(S)[None, :] < lengths[:, None]).to(dev)  # (B, S)
            noise = 1e3 * torch.randn(B, S, D, generator=g, dtype=ctx.dtype).to(dev)  # (B, S, D)
            garbage = torch.where(mask[..., None], keys, noise)  # padded keys replaced by large noise
            for name, make in self.attention_modules.items():
                torch.manual_seed(seed)
                attn, where = make(D, D).to(dev, ctx.dtype), f"{name}, seed {seed}"
                with torch.no_grad():
                    context, weights = attn(query, keys, mask)
                    ctx.assert_close(weights.sum(-1), weights.new_ones(B), name="weights sum to 1", where=where)
                    ctx.expect(
                        bool((weights[~mask] == 0).all()),
                        f"{where}: padded positions get weight {weights[~mask].abs().max().item():.3g}, not exactly 0",
                        name="padded positions get exactly 0",
                    )
                    want_w, want_c = _reference_attention(attn, query, keys, lengths)
                    ctx.assert_close(weights, want_w, name="weights = per-row softmax over real positions", where=where)
                    ctx.assert_close(context, want_c, name="context = weights @ values", where=where)
                    again = attn(query, garbage, mask)
                    ctx.assert_close(
                        again, (context, weights), rtol=0, atol=0, name="padded keys change nothing", where=where
                    )

    def run_variant(self, ctx, cfg: AttentionConfig, variant: str, seed: int, data=None):
        """Train ``variant`` on the shared data/budget: (exact, token acc, losses, seconds, tokens, model)."""
        t = cfg.translation
        vocab, train, test, _ = data or load_encoded(t, seed)
        model = build_seq2seq(t, vocab, variant, ctx.device, ctx.dtype, seed)
        opt = torch.optim.Adam(model.parameters(), lr=t.lr)
        losses, seconds, tokens = train_seq2seq(
            model, opt, train, seq2seq_step, steps=t.steps, batch_size=t.batch_size, seed=seed
        )
        exact, tok = score(translate(model, vocab, test), self.references(test))
        return exact, tok, losses, seconds, tokens, model

    @staticmethod
    def references(test) -> list[str]:
        return [toy_translate(s) for s in test.pairs.sources] if test.pairs.synthetic else test.pairs.targets

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_weights(ctx)
        data = load_encoded(cfg.translation, ctx.rng_seed)
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

    def prepare(self, ctx, impl: str, config: AttentionConfig) -> Prepared:
        t = dataclasses.replace(config.translation, attention=impl)
        vocab, train, _, _ = load_encoded(t, ctx.rng_seed)
        model = build_seq2seq(t, vocab, impl, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=t.lr)
        idx = torch.arange(t.batch_size)
        batch = seq2seq_batch(train, idx, ctx.device)
        tokens = int(train.tgt_len[idx].sum())
        return Prepared(fn=lambda: seq2seq_step(model, opt, batch), items=tokens, item_unit="tokens")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = load_encoded(cfg.translation, ctx.rng_seed)
        vocab, test = data[0], data[2]
        exact = {}
        for v in self.variants:
            exact[v], tok, losses, seconds, tokens, model = self.run_variant(ctx, cfg, v, ctx.rng_seed, data)
            steps = list(range(1, len(losses) + 1))
            ctx.curve("train loss", steps, losses, y_label="masked cross-entropy", series=v, log_y=True)
            ctx.metric(f"{v}.exact_match", exact[v])
            ctx.metric(f"{v}.token_accuracy", tok)
            ctx.metric(f"{v}.train_tokens_per_s", tokens / seconds)
            if v != "none":
                w, src, out = attention_map(model, vocab, test.pairs.sources[0])
                ctx.heatmap(
                    f"attention map ({v})",
                    w,
                    x=src,
                    y=out,
                    x_label="source word",
                    y_label="output word",
                    caption=f"{v} attention of the trained model on a held-out sentence",
                )
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
        ctx.metric("attention_gain", min(exact["bahdanau"], exact["luong"]) - exact["none"])
