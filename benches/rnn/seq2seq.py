"""5.04 Sequence-to-sequence translation.

Compared: nothing against a baseline; a training run of ``models.seq2seq.Seq2Seq``, a GRU
encoder-decoder (Bahdanau additive attention in the presets; 5.05 ``rnn.rnn_attention``
compares it with no attention and with Luong's), trained with teacher forcing and Adam,
then decoded greedily (``kernels.text.decoding.greedy``).

Data: the synthetic toy language of ``harness.data.synthetic_translation`` (labelled
synthetic: a fixed dictionary, adjectives moved after their noun and the verb to the end,
so the model must reorder, not just copy); ``harness.data.toy_translate`` gives the exact
answer for any source. With ``--data-dir`` holding ``translation/*.tsv`` (Tatoeba-style
``source<TAB>target`` lines) the bench trains on that real corpus instead and scores
against its references. Vocabularies (``harness.data.parallel.ParallelVocab``) are built on
the training split only; target ids gain ``<bos>`` and ``<eos>``.

Check (tiny): (1) the loss ignores padding: ``masked_cross_entropy`` is unchanged, to the
bit, when the logits and the target ids at padded positions are replaced by random values
(out-of-range ids included), equals an independent per-sequence sum of ``F.cross_entropy``
over the real tokens divided by their count, and sends exactly zero gradient to padded
logits; (2) after the tiny budget the training loss has fallen below a quarter of its start
and greedy decoding of held-out sources matches ``toy_translate`` exactly on at least
``min_exact`` of them (the tiny budget gave 94.5-100% over seeds 0-9).

Bench: the loss curve, one timed training step and greedy decoding of 64 held-out sources
(tokens/s each), exact-match and token accuracy, sample translations and the attention map
of one held-out sentence (which source word each output word looked at).

Lesson: the decoder runs one step per target token in Python, in training too (attention
needs each step's state), so time grows with the target length, not only with the FLOPs.
The attention map of a trained model is nearly a permutation matrix: each output word looks
up its source word, and the reordering (adjective after noun, verb last) is visible as the
off-diagonal cells.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
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
from models.seq2seq import masked_cross_entropy


# -- the wrong versions (mutants) ------------------------------------------------------------
def _loss_over_padding(logits, targets, lengths):
    """Averages over every position, padding included (the classic bug)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten().clamp(0, logits.shape[-1] - 1))


def _mask_from_targets(logits, targets, lengths):
    """Masks with targets != 0: right only while padded targets really are 0."""
    mask = targets != 0
    t = targets.flatten().clamp(0, logits.shape[-1] - 1)
    return (F.cross_entropy(logits.flatten(0, 1), t, reduction="none").view(targets.shape) * mask).sum() / mask.sum()


def _never_steps(self, model, opt, batch):
    src, src_len, tgt_in, tgt_out, tgt_len = batch
    loss = self.loss_fn(model(src, src_len, tgt_in), tgt_out, tgt_len)
    loss.backward()  # no opt.step(): the model never changes
    return loss.detach()


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
        Mutant("loss_over_padding", "averages the loss over padded positions too",
               {"loss_fn": staticmethod(_loss_over_padding)}, match="loss unchanged by padded"),
        Mutant("mask_from_target_ids", "masks padding by target id != 0 instead of by length",
               {"loss_fn": staticmethod(_mask_from_targets)}, match="loss unchanged by padded"),
        Mutant("never_steps", "the optimizer never steps", {"train_step": _never_steps,
               "sizes": {"tiny": dataclasses.replace(sizes["tiny"], steps=20)}}, match="training loss"),
    )  # fmt: skip

    def data(self, cfg: TranslationConfig, seed: int, real: bool = False):
        """(vocab, train, test, description) as padded id tensors."""
        return load_encoded(cfg, seed, real)

    def train_step(self, model, opt, batch) -> torch.Tensor:
        return seq2seq_step(model, opt, batch, self.loss_fn)

    def train(self, ctx, cfg: TranslationConfig, vocab, train, attention: str, seed: int):
        """(model, losses per step, seconds, target tokens) after ``cfg.steps`` steps."""
        model = build_seq2seq(cfg, vocab, attention, ctx.device, ctx.dtype, seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        losses, seconds, tokens = train_seq2seq(
            model, opt, train, self.train_step, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed
        )
        return model, losses, seconds, tokens

    @staticmethod
    def references(test) -> list[str]:
        return [toy_translate(s) for s in test.pairs.sources] if test.pairs.synthetic else test.pairs.targets

    def check_loss_masking(self, ctx) -> None:
        g, dev = torch.Generator().manual_seed(ctx.rng_seed), ctx.device
        B, T, V = 5, 7, 11
        logits = torch.randn(B, T, V, generator=g, dtype=ctx.dtype).to(dev).requires_grad_(True)
        targets = torch.randint(0, V, (B, T), generator=g).to(dev)
        lengths = torch.tensor([7, 3, 1, 5, 6], device=dev)
        pad = torch.arange(T, device=dev)[None, :] >= lengths[:, None]  # (B, T)
        loss = self.loss_fn(logits, targets, lengths)
        noise = 100 * torch.randn(B, T, V, generator=g, dtype=ctx.dtype).to(dev)
        bad_ids = torch.randint(-5, 3 * V, (B, T), generator=g).to(dev)
        noisy = self.loss_fn(
            torch.where(pad[..., None], noise, logits.detach()), torch.where(pad, bad_ids, targets), lengths
        )
        ctx.assert_close(noisy, loss.detach(), rtol=0, atol=0, name="loss unchanged by padded logits and targets")
        per_seq = [
            F.cross_entropy(logits[b, :n].double(), targets[b, :n], reduction="sum")
            for b, n in enumerate(lengths.tolist())
        ]
        ctx.assert_close(
            loss.double(), (sum(per_seq) / lengths.sum()).detach(), name="loss = mean NLL over real tokens",
            rtol=1e-6 if ctx.dtype == torch.float32 else 1e-12, atol=0,
        )  # fmt: skip
        (grad,) = torch.autograd.grad(loss, logits)
        ctx.expect(
            bool((grad[pad] == 0).all()), "padded positions receive a nonzero gradient", name="no gradient into padding"
        )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_loss_masking(ctx)
        vocab, train, test, _ = self.data(cfg, ctx.rng_seed)
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train, cfg.attention, ctx.rng_seed)
        first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        ctx.expect(
            last < 0.25 * first,
            f"training loss fell from {first:.3f} only to {last:.3f} (needs < 1/4) in {cfg.steps} steps",
            name="training loss falls",
        )
        exact, tok_acc = score(translate(model, vocab, test), self.references(test))
        ctx.metric("check_exact_match", exact)
        ctx.metric("check_token_accuracy", tok_acc)
        ctx.expect(
            exact >= cfg.min_exact,
            f"{exact:.1%} of held-out sentences translated exactly, below the {cfg.min_exact:.0%} threshold",
            name=f"exact match >= {cfg.min_exact}",
        )

    def prepare(self, ctx, impl: str, config: TranslationConfig) -> Prepared:
        vocab, train, _, _ = self.data(config, ctx.rng_seed, real=True)
        model = build_seq2seq(config, vocab, config.attention, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        idx = torch.arange(config.batch_size)
        batch = seq2seq_batch(train, idx, ctx.device)
        tokens = int(train.tgt_len[idx].sum())
        return Prepared(fn=lambda: self.train_step(model, opt, batch), items=tokens, item_unit="tokens")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        vocab, train, test, desc = self.data(cfg, ctx.rng_seed, real=True)
        ctx.note(f"data: {desc}; {train.src.shape[0]} train / {test.src.shape[0]} held-out pairs")
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train, cfg.attention, ctx.rng_seed)
        ctx.curve(
            "train loss", list(range(1, len(losses) + 1)), losses, y_label="masked cross-entropy", series=cfg.attention
        )
        ctx.metric("train_tokens_per_s", tokens / seconds)
        refs, hyps = self.references(test), translate(model, vocab, test)
        exact, tok_acc = score(hyps, refs)
        ctx.metric("exact_match", exact)
        ctx.metric("token_accuracy", tok_acc)
        rows = list(zip(test.pairs.sources, refs, hyps))[:5]
        ctx.table("sample translations", [{"source": s, "reference": r, "greedy": h} for s, r, h in rows])
        if cfg.attention != "none":
            w, src_toks, out_toks = attention_map(model, vocab, test.pairs.sources[0])
            ctx.heatmap("attention map", w, x=src_toks, y=out_toks, x_label="source word", y_label="output word",
                        caption=f"{cfg.attention} attention of the trained model on a held-out sentence")  # fmt: skip
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        sub = test.head(64)
        ctx.measure(
            "greedy_decode",
            Prepared(fn=lambda: translate(model, vocab, sub), items=int(sub.tgt_len.sum()), item_unit="tokens"),
            config=cfg,
        )
