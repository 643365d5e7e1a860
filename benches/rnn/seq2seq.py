"""5.04 Sequence-to-sequence translation.

Compared: no baseline; one training run of ``models.seq2seq.Seq2Seq``, a GRU encoder-decoder
(Bahdanau additive attention in the presets; 5.05 ``rnn.rnn_attention`` compares it with no
attention and with Luong's), trained with teacher forcing and Adam, decoded greedily
(``kernels.text.decoding.greedy``).

Data: the synthetic toy language of ``harness.data.synthetic_translation`` (a fixed dictionary,
adjectives moved after their noun and the verb to the end, so the model must reorder, not just
copy); ``harness.data.toy_translate`` gives the exact answer for any source. With ``--data-dir``
holding ``translation/*.tsv`` (Tatoeba-style ``source<TAB>target`` lines) the bench trains and
scores on that real corpus instead. Vocabularies (``harness.data.parallel.ParallelVocab``) are
built on the training split only; target ids gain ``<bos>`` and ``<eos>``.

Check (tiny): the loss ignores padding (noise in padded logits and target ids changes it not a bit;
it equals a per-sequence sum of ``F.cross_entropy`` over the real tokens; no gradient reaches
padded logits); the tiny budget brings the loss below a quarter of its start and greedy decoding
matches ``toy_translate`` exactly on at least ``min_exact`` of the held-out sources (94.5-100% over
seeds 0-9). Timed: a training step and greedy decoding (tokens/s).

Lesson: the decoder runs one step per target token in Python, in training too (attention needs each
step's state), so time grows with the target length, not only with the FLOPs. The attention map of
a trained model is nearly a permutation matrix: each output word looks up its source word, and the
reordering (adjective after noun, verb last) is visible as the off-diagonal cells.
"""

from __future__ import annotations

import torch

from harness import Prepared, TrainingRun, task
from harness import train_text as tt
from harness.claims import metric
from harness.data import toy_translate
from harness.mutants import Mutant, tiny_changed
from harness.train_text import TranslationConfig
from kernels.text.seq2seq_loss import loss_over_padding, mask_from_targets, never_steps, padding_probe
from models.seq2seq import masked_cross_entropy


@task("rnn.seq2seq", seed="5.04", title="sequence-to-sequence translation")
class Seq2seqTranslation(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": TranslationConfig(n_train=2000, n_test=200, max_adjectives=1, hidden=32, steps=150),
        "cpu": TranslationConfig(n_train=6000, n_test=500, max_adjectives=2, hidden=64, steps=250, lr=5e-3),
        "gpu": TranslationConfig(
            n_train=50000, n_test=2000, max_adjectives=3, hidden=256, steps=3000, lr=1e-3, batch_size=256
        ),
    }
    metrics = {
        "exact_match": "held-out sentences translated exactly (greedy), share in [0, 1]",
        "token_accuracy": "held-out target tokens right at their position, share in [0, 1]",
    }
    claims = (
        metric("exact_match", ">=", 0.95, text="GRU + attention translates >= 95 % of held-out sentences exactly"),
        metric("token_accuracy", ">=", 0.98, text="greedy decoding gets >= 98 % of held-out target tokens right"),
    )
    #: the loss the task trains with
    loss_fn = staticmethod(masked_cross_entropy)
    mutants = (
        *(
            Mutant(name, what, {"loss_fn": staticmethod(wrong)}, match="loss unchanged by padded")
            for name, what, wrong in (
                ("loss_over_padding", "averages the loss over padded positions too", loss_over_padding),
                ("mask_from_target_ids", "masks padding by target id != 0 instead of by length", mask_from_targets),
            )
        ),
        Mutant(
            "never_steps",
            "the optimizer never steps",
            {"train_step": never_steps, **tiny_changed(sizes, steps=20)},
            match="training loss",
        ),
    )

    def data(self, cfg: TranslationConfig, seed: int, real: bool = False):
        """(vocab, train, test, description) as padded id tensors."""
        return tt.load_encoded(cfg, seed, real)

    def train_step(self, model, opt, batch) -> torch.Tensor:
        return tt.seq2seq_step(model, opt, batch, self.loss_fn)

    def train(self, ctx, cfg: TranslationConfig, vocab, train):
        """(model, losses per step, seconds, target tokens) after ``cfg.steps`` steps of Adam."""
        model = tt.build_seq2seq(cfg, vocab, cfg.attention, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        return model, *tt.train_seq2seq(
            model, opt, train, self.train_step, steps=cfg.steps, batch_size=cfg.batch_size, seed=ctx.rng_seed
        )

    @staticmethod
    def references(test) -> list[str]:
        return [toy_translate(s) for s in test.pairs.sources] if test.pairs.synthetic else test.pairs.targets

    def check(self, ctx) -> None:
        # the loss ignores padding: noise there changes nothing, and no gradient flows into it
        p = padding_probe(self.loss_fn, ctx.dtype, ctx.device, torch.Generator().manual_seed(ctx.rng_seed))
        ctx.assert_close(p["noisy"], p["loss"], rtol=0, atol=0, name="loss unchanged by padded logits and targets")
        rtol = 1e-6 if ctx.dtype == torch.float32 else 1e-12  # the float32 sum's rounding; float64 to ~1 ulp
        ctx.assert_close(p["loss"].double(), p["reference"], name="loss = mean NLL over real tokens", rtol=rtol, atol=0)
        nonzero = int((p["pad_grad"] != 0).sum())
        ctx.expect(nonzero == 0, f"{nonzero} padded positions receive a gradient", name="no gradient into padding")
        cfg = ctx.configs[0]
        vocab, train, test, _ = self.data(cfg, ctx.rng_seed)
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train)
        first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        ctx.expect(
            last < 0.25 * first,
            f"training loss fell from {first:.3f} only to {last:.3f} (needs < 1/4) in {cfg.steps} steps",
            name="training loss falls",
        )
        exact, tok_acc = tt.score(tt.translate(model, vocab, test), self.references(test))
        ctx.metric("check_exact_match", exact)
        ctx.metric("check_token_accuracy", tok_acc)
        ctx.expect(
            exact >= cfg.min_exact,
            f"{exact:.1%} of held-out sentences translated exactly, below the {cfg.min_exact:.0%} threshold",
            name=f"exact match >= {cfg.min_exact}",
        )

    def prepare(self, ctx, impl: str, config: TranslationConfig) -> Prepared:
        vocab, train, _, _ = self.data(config, ctx.rng_seed, real=True)
        model = tt.build_seq2seq(config, vocab, config.attention, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        batch = tt.seq2seq_batch(train, torch.arange(config.batch_size), ctx.device)  # the first batch_size pairs
        tokens = int(train.tgt_len[: config.batch_size].sum())
        return Prepared(fn=lambda: self.train_step(model, opt, batch), items=tokens, item_unit="tokens")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        vocab, train, test, desc = self.data(cfg, ctx.rng_seed, real=True)
        ctx.note(f"data: {desc}; {train.src.shape[0]} train / {test.src.shape[0]} held-out pairs")
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train)
        steps = list(range(1, len(losses) + 1))
        ctx.curve("train loss", steps, losses, y_label="masked cross-entropy", series=cfg.attention)
        ctx.metric("train_tokens_per_s", tokens / seconds)
        refs, hyps = self.references(test), tt.translate(model, vocab, test)
        exact, tok_acc = tt.score(hyps, refs)
        ctx.metric("exact_match", exact)
        ctx.metric("token_accuracy", tok_acc)
        rows = list(zip(test.pairs.sources, refs, hyps))[:5]
        ctx.table("sample translations", [{"source": s, "reference": r, "greedy": h} for s, r, h in rows])
        if cfg.attention != "none":
            caption = f"{cfg.attention} attention of the trained model on a held-out sentence"
            tt.record_attention_map(ctx, "attention map", model, vocab, test.pairs.sources[0], caption)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        sub = test.head(64)
        decode = Prepared(fn=lambda: tt.translate(model, vocab, sub), items=int(sub.tgt_len.sum()), item_unit="tokens")
        ctx.measure("greedy_decode", decode, config=cfg)
