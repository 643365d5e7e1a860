"""5.01 Character-level RNN text generation.

Compared: nothing against a baseline; a character LSTM language model (the char-rnn of
Karpathy's "The Unreasonable Effectiveness of Recurrent Neural Networks", 2015) trained on real
text (the standard library's docstrings, or ``corpus/*.txt`` under ``--data-dir``; split 90/10,
``harness.lm_run``), and seeded sampling from it (``kernels.text.decoding.sample``).

Check (tiny): the held-out loss falls from log V to below the unigram entropy of the held-out
characters under the training frequencies, so the model uses the context. Sampling, from an
untrained model (near uniform: a sampler without the ban emits <pad>/<unk> within a few hundred
draws) and a trained one, follows its generator only and emits training characters only.

Lesson: generation is one tiny step per character, so per-step dispatch, not arithmetic,
sets its rate. After a few hundred steps the samples have word lengths, spaces, line breaks
and frequent words right between invented ones: the first thing a character model learns is
the spelling statistics, long before meaning (Karpathy 2015 shows the same progression on
Shakespeare and Wikipedia).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Prepared, task
from harness.claims import metric
from harness.data import CharTokenizer
from harness.data.corpus import unigram_nll
from harness.lm_run import LanguageModelRun, LMConfig
from harness.mutants import Mutant
from kernels.text import rnn_lm


@dataclasses.dataclass(frozen=True)
class CharConfig(LMConfig):
    """Corpus slice, model and budget of one char-RNN run (the shared fields: ``harness.lm_run.LMConfig``)."""

    sample_chars: int = 200
    """characters generated per row when sampling"""

    def label(self) -> str:
        return f"chars={self.corpus_chars},H={self.hidden}x{self.num_layers},T={self.seq_len},steps={self.steps}"


@task("rnn.char_rnn", seed="5.01", title="character-level RNN text generation")
class CharRnn(LanguageModelRun):
    __doc__ = __doc__
    sizes = {
        "tiny": CharConfig(corpus_chars=200_000, emb=32, hidden=64, steps=120),
        "cpu": CharConfig(corpus_chars=730_000, emb=64, hidden=128, steps=200, lr=5e-3, eval_every=50),
        "gpu": CharConfig(
            730_000, emb=128, hidden=512, num_layers=2, steps=3000, seq_len=128, batch_size=128, lr=2e-3, eval_every=250
        ),
    }
    metrics = {
        "final_held_out_loss": "held-out NLL after training, nats per character",
        "gain_over_unigram": "unigram entropy minus the final held-out loss, nats per character",
    }
    claims = (
        metric("gain_over_unigram", ">=", 0.8, text="the char LSTM beats the unigram entropy by >= 0.8 nats/char"),
        metric("final_held_out_loss", "<=", 2.5, text="held-out loss <= 2.5 nats/char after the cpu budget"),
    )
    mutants = (
        Mutant(
            "global_rng_sampler",
            "samples from the global RNG, ignoring the generator",
            {"sample_fn": staticmethod(rnn_lm.global_rng_sample)},
            match="differ",
        ),
        Mutant(
            "no_ban_sampler",
            "can emit <pad>/<unk>",
            {"sample_fn": staticmethod(rnn_lm.no_ban_sample)},
            match="<pad>/<unk>",
        ),
        Mutant(
            "never_steps",
            "the optimizer never steps",
            {
                "train_step": staticmethod(rnn_lm.never_steps),
                "sizes": {"tiny": dataclasses.replace(sizes["tiny"], steps=5)},
            },
            match="unigram entropy",
        ),
    )

    def fit_tokenizer(self, train_text: str, cfg: CharConfig) -> CharTokenizer:
        return CharTokenizer.fit(train_text)

    def generate(self, model, tok: CharTokenizer, rows: int, chars: int, seed: int, device) -> torch.Tensor:
        """ids (rows, chars) sampled after a newline with a generator seeded ``seed``."""
        start = torch.full((rows, 1), tok.stoi.get("\n", tok.unk_id), dtype=torch.int64, device=device)
        return self.sample(model, tok, start, chars, seed)

    def check_sampling(self, ctx, model, tok: CharTokenizer, train_text: str, what: str) -> None:
        before, seed = torch.random.get_rng_state(), ctx.rng_seed
        a, b, c = (self.generate(model, tok, 4, 200, seed + i, ctx.device) for i in (0, 0, 1))
        differ = f"{what}: two samples with generator seed {seed} differ"
        ctx.expect(torch.equal(a, b), differ, name="sampling is seeded")
        same = f"{what}: generator seeds {seed} and {seed + 1} gave the same text"
        ctx.expect(not torch.equal(a, c), same, name="another seed, another text")
        rng = torch.equal(before, torch.random.get_rng_state())
        ctx.expect(rng, f"{what}: sampling changed the global RNG", name="global RNG untouched")
        ids = torch.cat([a, c])
        specials = int(((ids == tok.pad_id) | (ids == tok.unk_id)).sum())
        stray = sorted({ch for row in ids for ch in tok.decode(row)} - set(train_text))
        ctx.expect(
            specials == 0 and not stray,
            f"{what}: sampled {specials} <pad>/<unk> ids and characters never seen in training: {stray[:10]!r}",
            name="samples only the vocabulary",
        )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = tok, train, held, train_text, _ = self.data(cfg)
        self.check_sampling(ctx, self.model(cfg, len(tok), ctx), tok, train_text, "untrained model")
        model, _, losses, seconds, tokens = self.run(ctx, cfg, data)
        unigram = unigram_nll(train, held, len(tok))
        for name, v in (("initial_loss", losses[0]), ("final_loss", losses[-1]), ("unigram_entropy", unigram)):
            ctx.metric(f"check_{name}", v)
        ctx.metric("check_train_tokens_per_s", tokens / seconds)
        ctx.expect(
            losses[0] > math.log(len(tok)) - 0.5 and losses[-1] < unigram,
            f"held-out loss {losses[0]:.3f} -> {losses[-1]:.3f} nats/char after {cfg.steps} steps; it must "
            f"fall below the unigram entropy {unigram:.3f}",
            name="held-out loss falls below unigram entropy",
        )
        self.check_sampling(ctx, model, tok, train_text, "trained model")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = tok, train, held, _, desc = self.data(cfg, real=True)
        ctx.note(f"data: {desc}; {len(train)} train / {len(held)} held-out characters, vocabulary {len(tok)}")
        model, steps, losses, seconds, tokens = self.run(ctx, cfg, data, curve=True)
        ctx.curve("held-out loss", steps, losses, y_label="nats per character", series="char-lstm")
        unigram = unigram_nll(train, held, len(tok))
        ctx.metric("final_held_out_loss", losses[-1])
        ctx.metric("unigram_entropy", unigram)
        ctx.metric("gain_over_unigram", unigram - losses[-1])
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.note("sample: " + tok.decode(self.generate(model, tok, 1, cfg.sample_chars, ctx.rng_seed, ctx.device)[0]))
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        gen = Prepared(
            fn=lambda: self.generate(model, tok, 16, cfg.sample_chars, ctx.rng_seed, ctx.device),
            items=16 * cfg.sample_chars,
            item_unit="tokens",
        )
        ctx.measure("generate", gen, config=cfg)
