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

A sampler that uses the global RNG, one that can emit ``<pad>``/``<unk>``, and a model
that never trains each fail it (tests/tasks/test_rnn_char_rnn.py).

Bench: held-out loss curve, tokens/s of one timed training step and of generation (a
batch of samples, one character per step per row), and a sample of generated text.

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.char_rnn --no-save``; all 730k characters, LSTM 128, 200 steps of 32 x 64):
held-out loss 4.59 -> 2.35 (step 50) -> 2.10 nats per character, unigram entropy 3.31;
one training step 42 ms = 49k characters/s; generation 20k characters/s (16 rows of 200:
one tiny step per character, so per-step dispatch, not arithmetic, sets the rate). After
200 steps the samples have word lengths, spaces, line breaks and frequent words right
("the", "and", "object", "is to file") between invented ones: the first thing a
character model learns is the spelling statistics, long before meaning.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import CharTokenizer, read_text, stdlib_corpus
from harness.data.sources import resolve
from kernels.text import decoding
from models.sequence import SequenceModel, SequenceModelConfig


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


@task("rnn.char_rnn", seed="5.01", title="character-level RNN text generation")
class CharRnn(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": CharConfig(corpus_chars=200_000, emb=32, hidden=64, steps=120),
        "cpu": CharConfig(corpus_chars=730_000, emb=64, hidden=128, steps=200, lr=5e-3, eval_every=50),
        "gpu": CharConfig(
            corpus_chars=730_000,
            emb=128,
            hidden=512,
            num_layers=2,
            steps=3000,
            seq_len=128,
            batch_size=128,
            lr=2e-3,
            eval_every=250,
        ),
    }

    #: the sampler under test (tests plant broken ones)
    sample_fn = staticmethod(decoding.sample)

    # -- data and model -------------------------------------------------------------------
    def corpus(self, real: bool = False) -> tuple[str, str]:
        source = resolve("corpus")
        if real and source.kind == "files":
            files = sorted(source.path.glob("*.txt"))
            return "\n".join(read_text(f) for f in files), str(source)
        c = stdlib_corpus()
        return c.text, f"{c.description}; sha256 {c.sha256[:16]}"

    def data(self, cfg: CharConfig, real: bool = False):
        text, desc = self.corpus(real)
        text = text[: cfg.corpus_chars]
        cut = int(0.9 * len(text))
        tok = CharTokenizer.fit(text[:cut])
        return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), text[:cut], desc

    def model(self, cfg: CharConfig, vocab: int, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(
            vocab_size=vocab, input_size=cfg.emb, hidden_size=cfg.hidden, output_size=vocab, num_layers=cfg.num_layers
        )
        return SequenceModel(mc).to(device, dtype)

    # -- training and evaluation ----------------------------------------------------------
    def batch(self, ids: torch.Tensor, cfg: CharConfig, g: torch.Generator) -> torch.Tensor:
        starts = torch.randint(0, len(ids) - cfg.seq_len - 1, (cfg.batch_size,), generator=g)
        return ids[starts[:, None] + torch.arange(cfg.seq_len + 1)]  # (B, T+1)

    def train_step(self, model, opt, window: torch.Tensor) -> torch.Tensor:
        logits = model(window[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def held_out_loss(self, model, ids: torch.Tensor, cfg: CharConfig, device) -> float:
        """Mean NLL (nats per character) over non-overlapping windows of the held-out text."""
        n = (len(ids) - 1) // cfg.seq_len
        x = ids[: n * cfg.seq_len].view(n, cfg.seq_len).to(device)  # (n, T)
        y = ids[1 : n * cfg.seq_len + 1].view(n, cfg.seq_len).to(device)
        model.eval()
        loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        model.train()
        return float(loss)

    @staticmethod
    def unigram_entropy(train: torch.Tensor, held_out: torch.Tensor, vocab: int) -> float:
        """Held-out NLL (nats) of add-one-smoothed training character frequencies."""
        counts = torch.bincount(train, minlength=vocab).double() + 1
        return float(-(counts / counts.sum()).log()[held_out].mean())

    def run(self, ctx, cfg: CharConfig, data, curve: bool = False):
        tok, train, held, _, _ = data
        model = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        first = self.held_out_loss(model, held, cfg, ctx.device)
        ev_steps, ev_loss, seconds = [0], [first], 0.0
        for step in range(1, cfg.steps + 1):
            window = self.batch(train, cfg, g).to(ctx.device)
            ctx.sync()
            t0 = time.perf_counter()
            self.train_step(model, opt, window)
            ctx.sync()
            seconds += time.perf_counter() - t0
            if curve and step % cfg.eval_every == 0 and step != cfg.steps:
                ev_steps.append(step)
                ev_loss.append(self.held_out_loss(model, held, cfg, ctx.device))
        ev_steps.append(cfg.steps)
        ev_loss.append(self.held_out_loss(model, held, cfg, ctx.device))
        return model, ev_steps, ev_loss, seconds, cfg.steps * cfg.batch_size * cfg.seq_len

    def generate(self, model, tok: CharTokenizer, rows: int, chars: int, seed: int, device) -> torch.Tensor:
        """ids (rows, chars) sampled after a newline with a generator seeded ``seed``."""
        start = torch.full((rows,), tok.stoi.get("\n", tok.unk_id), dtype=torch.int64, device=device)
        gen = torch.Generator(device=device).manual_seed(seed)
        was = model.training
        model.eval()
        ids = self.sample_fn(model.step, None, start, chars, generator=gen, banned=(tok.pad_id, tok.unk_id))
        model.train(was)
        return ids.cpu()

    # -- check ------------------------------------------------------------------------------
    def check_sampling(self, ctx, model, tok: CharTokenizer, train_text: str, what: str) -> None:
        before = torch.random.get_rng_state()
        a = self.generate(model, tok, 4, 200, ctx.rng_seed, ctx.device)
        b = self.generate(model, tok, 4, 200, ctx.rng_seed, ctx.device)
        c = self.generate(model, tok, 4, 200, ctx.rng_seed + 1, ctx.device)
        ctx.expect(
            torch.equal(a, b),
            f"{what}: two samples with generator seed {ctx.rng_seed} differ",
            name="sampling is seeded",
        )
        ctx.expect(
            not torch.equal(a, c),
            f"{what}: generator seeds {ctx.rng_seed} and {ctx.rng_seed + 1} gave the same text",
            name="another seed, another text",
        )
        ctx.expect(
            torch.equal(before, torch.random.get_rng_state()),
            f"{what}: sampling changed the global RNG",
            name="global RNG untouched",
        )
        ids = torch.cat([a, c])
        specials = int(((ids == tok.pad_id) | (ids == tok.unk_id)).sum())
        ctx.expect(
            specials == 0 and int(ids.min()) >= 0 and int(ids.max()) < len(tok),
            f"{what}: sampled {specials} <pad>/<unk> ids (ids range {int(ids.min())}..{int(ids.max())}, "
            f"vocabulary {len(tok)})",
            name="samples only the vocabulary",
        )
        stray = sorted({ch for row in ids for ch in tok.decode(row)} - set(train_text))
        ctx.expect(
            not stray,
            f"{what}: sampled characters never seen in training: {stray[:10]!r}",
            name="samples only the vocabulary",
        )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg)
        tok, train, held, train_text, _ = data
        fresh = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        self.check_sampling(ctx, fresh, tok, train_text, "untrained model")
        model, _, losses, seconds, tokens = self.run(ctx, cfg, data)
        unigram = self.unigram_entropy(train, held, len(tok))
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

    # -- bench ------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: CharConfig) -> Prepared:
        tok, train, _, _, _ = self.data(config, real=True)
        model = self.model(config, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        window = self.batch(train, config, torch.Generator().manual_seed(ctx.rng_seed)).to(ctx.device)
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
        ctx.metric("final_held_out_loss", losses[-1])
        ctx.metric("unigram_entropy", self.unigram_entropy(train, held, len(tok)))
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.note("sample: " + tok.decode(self.generate(model, tok, 1, cfg.sample_chars, ctx.rng_seed, ctx.device)[0]))
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        rows = 16
        ctx.measure(
            "generate",
            Prepared(
                fn=lambda: self.generate(model, tok, rows, cfg.sample_chars, ctx.rng_seed, ctx.device),
                items=rows * cfg.sample_chars,
                item_unit="tokens",
            ),
            config=cfg,
        )
