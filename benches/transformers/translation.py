"""6.08 Transformer for machine translation.

Trains ``models.transformer.Seq2SeqTransformer`` (encoder-decoder of Vaswani et al. 2017,
pre-LN, learned positions; tiny preset d=32, 2+2 layers) with teacher forcing, decodes greedily
(``kernels.text.translate``) the held-out sentences *not seen in training* and, in the bench,
draws the cross-attention map of one (which source word each output word reads). Data: a
tab-separated parallel corpus (``translation/*.tsv`` under ``$DRILLS_DATA_DIR``, e.g. a
Tatoeba/Anki pair file; first 90% train, last 10% held out) when present, else the SYNTHETIC toy
language ``harness.data.synthetic_translation``: ``det adj* noun verb det adj* noun`` -> each
word through a fixed dictionary, adjectives after their noun, verb last (SVO -> SOV);
``harness.data.toy_translate`` is the exact answer for any source sentence.

Lesson: the toy language needs word translation and reordering, which cross-attention learns
quickly: the map is close to a permutation matrix with the reordering off the diagonal. Greedy
decoding re-runs the decoder over the prefix at every step (no cache here; 6.06
``decoder_generation`` measures what a KV cache saves). A wider model is not automatically
better: the ``small`` preset (d=128, 3+3 blocks) at lr 3e-3 learned word choice but not order in
600 steps, a reminder that Vaswani et al. (2017) needed warm-up for their learning rate.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import toy_translate
from harness.data.parallel import ParallelVocab, load_translation_pairs
from harness.mutants import Mutant, tiny_changed
from harness.train import fit
from harness.train_text import score
from kernels.text import translate as tr
from kernels.text.wrong import non_causal_sdpa
from models.transformer import Seq2SeqTransformer, preset


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Data size, model and training budget."""

    model: str = "tiny"
    """models.transformer preset (encoder and decoder alike)"""
    n_train: int = 3000
    """training pairs (synthetic count, or a cap on real files)"""
    n_test: int = 200
    """held-out pairs generated (unseen ones are kept)"""
    steps: int = 250
    """optimizer steps"""
    batch_size: int = 64
    """pairs per step"""
    lr: float = 3e-3
    """AdamW learning rate"""
    target_exact: float = 0.9
    """share of held-out sentences the check requires decoded exactly right"""

    def label(self) -> str:
        return f"{self.model},n={self.n_train},steps={self.steps},bs={self.batch_size}"


@task("transformers.translation", seed="6.08", title="Transformer for machine translation")
class Translation(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": TranslationConfig(),
        "cpu": TranslationConfig(n_train=10_000, n_test=500, steps=500),
        "gpu": TranslationConfig(model="base", n_train=100_000, n_test=2000, steps=5000, lr=5e-4, batch_size=128),
    }
    metrics = {
        "exact_match": "held-out sentences (unseen in training) translated exactly, share in [0, 1]",
        "word_accuracy": "held-out words right at their position, share in [0, 1]",
    }
    claims = (
        metric("exact_match", ">=", 0.95, text="the tiny Transformer translates >= 95 % of unseen sentences exactly"),
        metric("word_accuracy", ">=", 0.98, text="greedy decoding gets >= 98 % of held-out words right"),
    )
    #: attention kernel of the model
    sdpa = staticmethod(F.scaled_dot_product_attention)
    mutants = (
        Mutant("non_causal_decoder", "the decoder's self-attention is not causal (it copies the answer)",
               {"sdpa": staticmethod(non_causal_sdpa), **tiny_changed(sizes, steps=120)}, match="greedy decoding got"),
        Mutant("does_not_learn", "learning rate 0", tiny_changed(sizes, lr=0.0, steps=30), match="loss"),
    )  # fmt: skip

    def _model(self, ctx, config, vocab):
        torch.manual_seed(ctx.rng_seed)
        cfg = preset(config.model, max_len=64)
        model = Seq2SeqTransformer(cfg, vocab.src.vocab_size, vocab.tgt.vocab_size, sdpa=self.sdpa)
        return model.to(ctx.device, ctx.dtype), torch.optim.AdamW(model.parameters(), lr=config.lr)

    def _train(self, ctx, config):
        train, test, desc = load_translation_pairs(config.n_train, config.n_test, seed=0, real=True)
        synthetic, test = test.synthetic, tr.unseen(train, test)
        ctx.note(f"data: {desc}; {len(train)} training pairs, {len(test)} held-out pairs not seen in training")
        vocab = ParallelVocab(train)
        enc = vocab.encode(train)
        src, tin, tout = (t.to(ctx.device) for t in (enc.src, enc.tgt_in, enc.tgt_out))
        model, opt = self._model(ctx, config, vocab)
        epochs = -(-config.steps * config.batch_size // len(train))
        log = fit(model, opt, (torch.cat([src, tin], 1), tout), batch_size=config.batch_size, epochs=epochs,
                  max_steps=config.steps, step_fn=tr.packed_step(src.shape[1]), seed=ctx.rng_seed)  # fmt: skip
        log.record(ctx)
        tokens = int((tout != 0).sum()) / len(train) * log.samples
        ctx.metric("train_target_tokens_per_s", tokens / log.train_time_s)
        return model, vocab, test, synthetic, log

    def _evaluate(self, ctx, model, vocab, test, synthetic):
        hyps, n_tokens, seconds = tr.translate(model, vocab, test.sources, ctx.device)
        if synthetic:  # the toy language's exact answer, else the reference as the vocabulary reads it
            refs = [toy_translate(s) for s in test.sources]
        else:
            refs = [vocab.tgt.decode(vocab.tgt.encode(t)) for t in test.targets]
        exact, word_acc = score(hyps, refs)
        ctx.metric("exact_match", exact)
        ctx.metric("word_accuracy", word_acc)
        ctx.metric("decode_tokens_per_s", n_tokens / seconds)
        wrong = [(s, h, r) for s, h, r in zip(test.sources, hyps, refs) if h != r][:3]
        ctx.note(f"greedy decoding: {exact:.1%} of {len(refs)} unseen sentences exactly right, word accuracy "
                 f"{word_acc:.1%}" + (f"; e.g. wrong: {wrong}" if wrong else ""))  # fmt: skip
        return exact

    def check(self, ctx):
        config = ctx.configs[0]
        model, vocab, test, synthetic, log = self._train(ctx, config)
        first, last = sum(log.losses[:10]) / 10, sum(log.losses[-10:]) / 10
        ctx.expect(last < 0.1 * first, f"training loss went from {first:.3f} to {last:.3f} (needs < a tenth)",
                   name="loss falls")  # fmt: skip
        exact = self._evaluate(ctx, model, vocab, test, synthetic)
        ctx.expect(exact >= config.target_exact, f"greedy decoding got {exact:.1%} of {len(test)} unseen sentences "
                   f"exactly right, below {config.target_exact:.0%}",
                   name="greedy decode right on held-out sentences")  # fmt: skip

    def prepare(self, ctx, impl, config):
        train, _, _ = load_translation_pairs(config.n_train, config.n_test, seed=0, real=True)
        vocab = ParallelVocab(train)
        model, opt = self._model(ctx, config, vocab)
        enc = vocab.encode(train).head(config.batch_size)
        src, tin, tout = (t.to(ctx.device) for t in (enc.src, enc.tgt_in, enc.tgt_out))
        step, x = tr.packed_step(src.shape[1]), torch.cat([src, tin], 1)  # (B, S + T), as fit packs it
        return Prepared(fn=lambda: step(model, opt, x, tout, None), items=int((tout != 0).sum()), item_unit="tokens")

    def bench(self, ctx):
        config = ctx.configs[0]
        model, vocab, test, synthetic, _ = self._train(ctx, config)
        self._evaluate(ctx, model, vocab, test, synthetic)
        ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        sources = test.sources[:256]
        tokens = sum(len(toy_translate(s).split()) + 1 for s in sources) if synthetic else None
        prepared = Prepared(
            fn=lambda: tr.translate(model, vocab, sources, ctx.device), items=tokens, item_unit="tokens"
        )
        ctx.measure("greedy_decode", prepared, config=f"{len(sources)} sentences")
        hyp = tr.translate(model, vocab, test.sources[:1], ctx.device)[0][0]
        attn, src_words, out_words = tr.cross_attention(model, vocab, test.sources[0], hyp, ctx.device)
        ctx.heatmap("cross-attention map (last decoder layer, mean over heads)", attn, x=src_words, y=out_words,
                    x_label="source word", y_label="output word",
                    caption="which source word each greedy output word reads, on a held-out sentence")  # fmt: skip
