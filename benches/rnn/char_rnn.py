"""5.01 Character-level RNN text generation.

Compared: nothing against a baseline; a training run of a character LSTM language model
(``models.sequence.SequenceModel``: embedding -> ``nn.LSTM`` -> logits over the
characters; the char-rnn of Karpathy's "The Unreasonable Effectiveness of Recurrent
Neural Networks", 2015) and seeded sampling from it (``kernels.text.decoding.sample``).

Data: real human-written text, offline: the docstrings of the Python standard library
(``harness.data.stdlib_corpus``; its SHA-256 goes into the run's notes), or any
``corpus/*.txt`` under ``--data-dir``. The first ``corpus_chars`` characters are split
90/10 into train and held-out text; the character vocabulary comes from the train part.

Check (tiny):

* the held-out loss falls from log V at initialisation to below the unigram entropy of
  the held-out characters under the training character frequencies (a model that only
  learned which characters are common cannot go lower; going lower means it uses the
  context). Over seeds 0-3 (120 steps of 32 x 64 characters, LSTM 64): 4.58-4.63 ->
  2.43-2.49 nats per character, against a unigram entropy of 3.31;
* sampling is seeded: the same generator seed gives the same text twice, a different
  seed a different text, and the global RNG is neither used nor changed;
* sampling only emits the vocabulary: never ``<pad>`` or ``<unk>``, every character
  seen in the training text, also from an untrained model (whose distribution is near
  uniform, so a sampler that forgot to ban them would emit them within a few hundred
  draws).

Bench: held-out loss curve, tokens/s of one timed training step and of generation (a
batch of samples, one character per step per row), and a sample of generated text (a
note in the report).

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
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import CharTokenizer
from harness.data.corpus import load_corpus, random_windows, split_windows, unigram_nll
from harness.mutants import Mutant
from harness.train_text import lm_step, lstm_lm, train_lm
from kernels.text import decoding


@dataclasses.dataclass(frozen=True)
class CharConfig:
    """Corpus slice, model and budget of one char-RNN run."""

    corpus_chars: int
    """characters of the corpus used (from its start); 90% train, 10% held out"""
    emb: int
    """character embedding width"""
    hidden: int
    """LSTM width"""
    steps: int
    """Adam steps"""
    seq_len: int = 64
    """characters per training window (truncated backpropagation through time)"""
    batch_size: int = 32
    """windows per step, drawn at random offsets of the training text"""
    lr: float = 1e-2
    """Adam learning rate"""
    num_layers: int = 1
    """stacked LSTM layers"""
    sample_chars: int = 200
    """characters generated per row when sampling"""
    eval_every: int = 50
    """steps between held-out evaluations on the bench's curve"""

    def label(self) -> str:
        return f"chars={self.corpus_chars},H={self.hidden}x{self.num_layers},T={self.seq_len},steps={self.steps}"


# -- the wrong versions (mutants) ------------------------------------------------------------
def _global_rng_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    """Draws from the global RNG: the generator passed in is ignored."""
    out, last = [], start
    for _ in range(steps):
        logits, state = step_fn(last, state)
        logits[:, list(banned)] = -math.inf
        last = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
        out.append(last)
    return torch.stack(out, 1)


def _no_ban_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    """Forgets to ban <pad> and <unk>."""
    return decoding.sample(step_fn, state, start, steps, generator=generator, temperature=temperature)


def _never_steps(self, model, opt, window):
    loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
    loss.backward()  # no opt.step()
    return loss.detach()


@task("rnn.char_rnn", seed="5.01", title="character-level RNN text generation")
class CharRnn(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": CharConfig(corpus_chars=200_000, emb=32, hidden=64, steps=120),
        "cpu": CharConfig(corpus_chars=730_000, emb=64, hidden=128, steps=200, lr=5e-3, eval_every=50),
        "gpu": CharConfig(
            730_000, emb=128, hidden=512, num_layers=2, steps=3000, seq_len=128, batch_size=128, lr=2e-3, eval_every=250
        ),  # fmt: skip
    }

    metrics = {
        "final_held_out_loss": "held-out NLL after training, nats per character",
        "gain_over_unigram": "unigram entropy minus the final held-out loss, nats per character",
    }
    claims = (
        metric("gain_over_unigram", ">=", 0.8, text="the char LSTM beats the unigram entropy by >= 0.8 nats/char"),
        metric("final_held_out_loss", "<=", 2.5, text="held-out loss <= 2.5 nats/char after the cpu budget"),
    )
    #: the sampler under test
    sample_fn = staticmethod(decoding.sample)
    mutants = (
        Mutant("global_rng_sampler", "samples from the global RNG, ignoring the generator",
               {"sample_fn": staticmethod(_global_rng_sample)}, match="differ"),
        Mutant("no_ban_sampler", "can emit <pad>/<unk>", {"sample_fn": staticmethod(_no_ban_sample)},
               match="<pad>/<unk>"),
        Mutant("never_steps", "the optimizer never steps", {"train_step": _never_steps,
               "sizes": {"tiny": dataclasses.replace(sizes["tiny"], steps=5)}}, match="unigram entropy"),
    )  # fmt: skip

    def data(self, cfg: CharConfig, real: bool = False):
        text, desc = load_corpus(real)
        text = text[: cfg.corpus_chars]
        cut = int(0.9 * len(text))
        tok = CharTokenizer.fit(text[:cut])
        return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), text[:cut], desc

    def model(self, cfg: CharConfig, vocab: int, device, dtype, seed: int):
        return lstm_lm(vocab, cfg.emb, cfg.hidden, cfg.num_layers, device, dtype, seed)

    def train_step(self, model, opt, window: torch.Tensor) -> torch.Tensor:
        return lm_step(model, opt, window)

    @torch.no_grad()
    def held_out_loss(self, model, ids: torch.Tensor, cfg: CharConfig, device) -> float:
        """Mean NLL (nats per character) over non-overlapping windows of the held-out text."""
        x, y = (t.to(device) for t in split_windows(ids, cfg.seq_len))  # (n, T) each
        model.eval()
        loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        model.train()
        return float(loss)

    def run(self, ctx, cfg: CharConfig, data, curve: bool = False):
        tok, train, held, _, _ = data
        model = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        steps, losses, seconds, tokens = train_lm(
            model, opt, train, self.train_step, lambda m: self.held_out_loss(m, held, cfg, ctx.device),
            steps=cfg.steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, seed=ctx.rng_seed,
            eval_every=cfg.eval_every if curve else None,
        )  # fmt: skip
        return model, steps, losses, seconds, tokens

    def generate(self, model, tok: CharTokenizer, rows: int, chars: int, seed: int, device) -> torch.Tensor:
        """ids (rows, chars) sampled after a newline with a generator seeded ``seed``."""
        start = torch.full((rows,), tok.stoi.get("\n", tok.unk_id), dtype=torch.int64, device=device)
        gen = torch.Generator(device=device).manual_seed(seed)
        was = model.training
        model.eval()
        ids = self.sample_fn(model.step, None, start, chars, generator=gen, banned=(tok.pad_id, tok.unk_id))
        model.train(was)
        return ids.cpu()

    def check_sampling(self, ctx, model, tok: CharTokenizer, train_text: str, what: str) -> None:
        before = torch.random.get_rng_state()
        a, b, c = (self.generate(model, tok, 4, 200, ctx.rng_seed + i, ctx.device) for i in (0, 0, 1))
        seed = ctx.rng_seed
        ctx.expect(
            torch.equal(a, b), f"{what}: two samples with generator seed {seed} differ", name="sampling is seeded"
        )
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
        data = self.data(cfg)
        tok, train, held, train_text, _ = data
        fresh = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        self.check_sampling(ctx, fresh, tok, train_text, "untrained model")
        model, _, losses, seconds, tokens = self.run(ctx, cfg, data)
        unigram = unigram_nll(train, held, len(tok))
        ctx.metric("check_initial_loss", losses[0])
        ctx.metric("check_final_loss", losses[-1])
        ctx.metric("check_unigram_entropy", unigram)
        ctx.metric("check_train_tokens_per_s", tokens / seconds)
        ctx.expect(
            losses[0] > math.log(len(tok)) - 0.5 and losses[-1] < unigram,
            f"held-out loss {losses[0]:.3f} -> {losses[-1]:.3f} nats/char after {cfg.steps} steps; it must "
            f"fall below the unigram entropy {unigram:.3f}",
            name="held-out loss falls below unigram entropy",
        )
        self.check_sampling(ctx, model, tok, train_text, "trained model")

    def prepare(self, ctx, impl: str, config: CharConfig) -> Prepared:
        tok, train, _, _, _ = self.data(config, real=True)
        model = self.model(config, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        window = random_windows(train, config.batch_size, config.seq_len, g).to(ctx.device)
        return Prepared(
            fn=lambda: self.train_step(model, opt, window), items=config.batch_size * config.seq_len, item_unit="tokens"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg, real=True)
        tok, train, held, _, desc = data
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
        rows = 16
        gen = Prepared(
            fn=lambda: self.generate(model, tok, rows, cfg.sample_chars, ctx.rng_seed, ctx.device),
            items=rows * cfg.sample_chars, item_unit="tokens",
        )  # fmt: skip
        ctx.measure("generate", gen, config=cfg)
