"""5.06 Next-word prediction.

Compared: nothing against a baseline; a training run of a word-level LSTM language model
(``models.sequence.SequenceModel``: embedding -> ``nn.LSTM`` -> logits over the words;
the recipe of Zaremba et al. 2014 at toy size) scored by perplexity, the exponential of
the mean negative log-likelihood per held-out word.

Data: real human-written text, offline: the Python standard library's docstrings
(``harness.data.stdlib_corpus``), or ``corpus/*.txt`` under ``--data-dir``. The first
``corpus_chars`` characters are split 90/10; ``WordTokenizer`` keeps the ``vocab_size``
most frequent training words (others, and held-out words never seen in training, become
``<unk>``, which is scored like any word, as in the PTB convention).

Evaluation: the held-out word stream is cut into non-overlapping windows of ``seq_len``
words; each window predicts its next ``seq_len`` words from a fresh state; perplexity =
exp(sum of NLL / number of predicted words), summed over batches of ``eval_batch``
windows (the last batch is smaller).

Check (tiny):

* perplexity equals exp(mean NLL) computed independently: one forward over all windows,
  log-softmax in float64, the target words' log-probabilities gathered and averaged;
  relative error <= 1e-5 (float32 logits);
* perplexity falls: at initialisation it is near the vocabulary size (a uniform model's
  perplexity is V), after training it is below the unigram perplexity of the held-out
  words under add-one-smoothed training frequencies. Over seeds 0-3 (V = 502, 120 steps
  of 32 x 24 words, LSTM 48): 491-521 at initialisation -> 43.4-46.1 after, against a
  unigram perplexity of 65.3.

Averaging per-batch means (the smaller last batch counts as much as a full one),
averaging per-batch perplexities, and a model that never trains each fail it
(tests/tasks/test_rnn_next_word.py).

Bench: held-out perplexity curve, tokens/s of one timed training step and of evaluation.

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.next_word --no-save``; 400k characters = 77k train words, V = 2,002,
LSTM 128, 200 steps of 32 x 24 words): perplexity 1,985 -> 148 (step 100) -> 123, against
a unigram perplexity of 213; one training step 72 ms = 10.7k words/s, evaluation 25.7k
words/s. The output layer dominates: at V = 5,000 and H = 256 one step took 410 ms
(2.5k words/s), most of it the (B*T, H) x (H, V) projection and its softmax.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import WordTokenizer
from models.sequence import SequenceModel, SequenceModelConfig

_char = importlib.import_module("drills_tasks.rnn.char_rnn")  # 5.01: corpus source and training step


@dataclasses.dataclass(frozen=True)
class WordConfig:
    """Corpus slice, vocabulary, model and budget of one word-LM run."""

    corpus_chars: int
    """characters of the corpus used (from its start); 90% train, 10% held out"""
    vocab_size: int
    """most frequent training words kept (plus <pad> and <unk>)"""
    emb: int
    """word embedding width"""
    hidden: int
    """LSTM width"""
    steps: int
    """Adam steps"""
    seq_len: int = 24
    """words per training and evaluation window"""
    batch_size: int = 32
    """windows per training step, at random offsets of the training stream"""
    eval_batch: int = 50
    """windows per evaluation batch (the held-out window count is not a multiple of it)"""
    lr: float = 1e-2
    """Adam learning rate"""
    num_layers: int = 1
    """stacked LSTM layers"""
    eval_every: int = 50
    """steps between held-out evaluations on the bench's curve"""

    def label(self) -> str:
        return f"chars={self.corpus_chars},V={self.vocab_size},H={self.hidden},steps={self.steps}"


@task("rnn.next_word", seed="5.06", title="next-word prediction")
class NextWord(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": WordConfig(corpus_chars=200_000, vocab_size=500, emb=32, hidden=48, steps=120),
        "cpu": WordConfig(
            corpus_chars=400_000, vocab_size=2000, emb=64, hidden=128, steps=200, lr=5e-3, eval_every=100
        ),
        "gpu": WordConfig(
            corpus_chars=730_000,
            vocab_size=10000,
            emb=650,
            hidden=650,
            num_layers=2,
            steps=3000,
            seq_len=35,
            batch_size=64,
            lr=2e-3,
            eval_every=250,
        ),
    }

    def __init__(self) -> None:
        self.char = _char.CharRnn()

    def data(self, cfg: WordConfig, real: bool = False):
        text, desc = self.char.corpus(real)
        text = text[: cfg.corpus_chars]
        cut = int(0.9 * len(text))
        tok = WordTokenizer.fit(text[:cut], max_size=cfg.vocab_size)
        return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), desc

    def model(self, cfg: WordConfig, vocab: int, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(
            vocab_size=vocab, input_size=cfg.emb, hidden_size=cfg.hidden, output_size=vocab, num_layers=cfg.num_layers
        )
        return SequenceModel(mc).to(device, dtype)

    @staticmethod
    def windows(ids: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-overlapping (inputs, targets), each (n, seq_len): targets are inputs shifted by one word."""
        n = (len(ids) - 1) // seq_len
        return ids[: n * seq_len].view(n, seq_len), ids[1 : n * seq_len + 1].view(n, seq_len)

    @torch.no_grad()
    def perplexity(self, model, x: torch.Tensor, y: torch.Tensor, batch: int, device) -> float:
        """exp(total NLL / predicted words), summed over batches of ``batch`` windows."""
        model.eval()
        total, count = 0.0, 0
        for i in range(0, x.shape[0], batch):
            xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)
            total += float(F.cross_entropy(model(xb).flatten(0, 1).float(), yb.flatten(), reduction="sum"))
            count += yb.numel()
        model.train()
        return math.exp(total / count)

    @torch.no_grad()
    def reference_perplexity(self, model, x: torch.Tensor, y: torch.Tensor, device) -> float:
        """exp(mean NLL), computed another way: one forward, float64 log-softmax, gather, mean."""
        model.eval()
        logp = torch.log_softmax(model(x.to(device)).double(), dim=-1)  # (n, T, V)
        model.train()
        return float(logp.gather(-1, y.to(device)[..., None]).mean().neg().exp())

    def run(self, ctx, cfg: WordConfig, data, curve: bool = False):
        tok, train, held, _ = data
        x, y = self.windows(held, cfg.seq_len)
        model = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        ev_steps, ev_ppl, seconds = [0], [self.perplexity(model, x, y, cfg.eval_batch, ctx.device)], 0.0
        for step in range(1, cfg.steps + 1):
            window = self.char.batch(train, cfg, g).to(ctx.device)  # (B, T+1) at random offsets
            ctx.sync()
            t0 = time.perf_counter()
            self.train_step(model, opt, window)
            ctx.sync()
            seconds += time.perf_counter() - t0
            if (curve and step % cfg.eval_every == 0) or step == cfg.steps:
                ev_steps.append(step)
                ev_ppl.append(self.perplexity(model, x, y, cfg.eval_batch, ctx.device))
        return model, ev_steps, ev_ppl, seconds, cfg.steps * cfg.batch_size * cfg.seq_len, (x, y)

    def train_step(self, model, opt, window) -> torch.Tensor:
        return self.char.train_step(model, opt, window)

    @staticmethod
    def unigram_perplexity(train: torch.Tensor, held: torch.Tensor, vocab: int) -> float:
        counts = torch.bincount(train, minlength=vocab).double() + 1
        return math.exp(float(-(counts / counts.sum()).log()[held[1:]].mean()))

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg)
        tok, train, held, _ = data
        model, _, ppl, seconds, tokens, (x, y) = self.run(ctx, cfg, data)
        ctx.expect(
            x.shape[0] % cfg.eval_batch != 0,
            f"{x.shape[0]} held-out windows split evenly into batches of "
            f"{cfg.eval_batch}: the check needs a smaller last batch",
            name="uneven last evaluation batch",
        )
        for state, m in (
            ("trained", model),
            ("untrained", self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)),
        ):
            got = self.perplexity(m, x, y, cfg.eval_batch, ctx.device)
            ctx.assert_close(
                torch.tensor(got),
                torch.tensor(self.reference_perplexity(m, x, y, ctx.device)),
                rtol=1e-5,
                atol=0,
                name="perplexity = exp(mean NLL)",
                where=state,
            )
        unigram = self.unigram_perplexity(train, held, len(tok))
        for k, v in (
            ("initial_perplexity", ppl[0]),
            ("final_perplexity", ppl[-1]),
            ("unigram_perplexity", unigram),
            ("train_tokens_per_s", tokens / seconds),
        ):
            ctx.metric(f"check_{k}", v)
        ctx.expect(
            0.5 * len(tok) < ppl[0] < 2 * len(tok),
            f"initial perplexity {ppl[0]:.1f} is far from the vocabulary size {len(tok)} (a near-uniform model's)",
            name="initial perplexity ~ vocabulary size",
        )
        ctx.expect(
            ppl[-1] < unigram,
            f"perplexity {ppl[0]:.1f} -> {ppl[-1]:.1f} after {cfg.steps} steps; it must "
            f"fall below the unigram perplexity {unigram:.1f}",
            name="perplexity falls below unigram",
        )

    def prepare(self, ctx, impl: str, config: WordConfig) -> Prepared:
        tok, train, _, _ = self.data(config, real=True)
        model = self.model(config, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        window = self.char.batch(train, config, torch.Generator().manual_seed(ctx.rng_seed)).to(ctx.device)
        return Prepared(
            fn=lambda: self.train_step(model, opt, window), items=config.batch_size * config.seq_len, item_unit="tokens"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg, real=True)
        tok, train, held, desc = data
        ctx.note(f"data: {desc}; {len(train)} train / {len(held)} held-out words, vocabulary {len(tok)}")
        model, steps, ppl, seconds, tokens, (x, y) = self.run(ctx, cfg, data, curve=True)
        ctx.curve("held-out perplexity", steps, ppl, y_label="perplexity", series="word-lstm", log_y=True)
        ctx.metric("final_perplexity", ppl[-1])
        ctx.metric("unigram_perplexity", self.unigram_perplexity(train, held, len(tok)))
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        ctx.measure(
            "evaluate",
            Prepared(
                fn=lambda: self.perplexity(model, x, y, cfg.eval_batch, ctx.device), items=y.numel(), item_unit="tokens"
            ),
            config=cfg,
        )
