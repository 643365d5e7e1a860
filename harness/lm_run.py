"""The training run the recurrent language-model drills share (rnn.char_rnn, rnn.next_word).

:class:`LanguageModelRun` is a :class:`harness.task.TrainingRun` trained by hand: a seeded
LSTM language model (``harness.train_text.lstm_lm``) on random windows of the first
``corpus_chars`` characters of ``harness.data.corpus.load_corpus`` (split 90/10, the
tokenizer fitted on the train part), evaluated on the held-out part by ``evaluate``. A task
subclasses it with its config, ``fit_tokenizer`` and ``evaluate`` (and its checks, claims,
mutants, bench); ``train_step`` and ``sample_fn`` are class attributes so a mutant can swap them.

A task's config subclasses :class:`LMConfig` (``kw_only=True`` for its own required fields).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from harness.contract import Prepared
from harness.data.corpus import load_corpus
from harness.task import TrainingRun
from harness.train_text import lm_step, lstm_lm, train_lm
from kernels.text import decoding, rnn_lm


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Corpus slice, model and budget of one language-model run."""

    corpus_chars: int
    """characters of the corpus used (from its start); 90% train, 10% held out"""
    emb: int
    """token embedding width"""
    hidden: int
    """LSTM width"""
    steps: int
    """Adam steps"""
    seq_len: int = 64
    """tokens per training window (truncated backpropagation through time)"""
    batch_size: int = 32
    """windows per step, drawn at random offsets of the training stream"""
    lr: float = 1e-2
    """Adam learning rate"""
    num_layers: int = 1
    """stacked LSTM layers"""
    eval_every: int = 50
    """steps between held-out evaluations on the bench's curve"""


class LanguageModelRun(TrainingRun):
    """A task base: ``data``, ``model``, ``run`` and ``prepare`` of an LSTM language model."""

    #: one optimizer step on windows (B, T+1) int64; the detached loss
    train_step = staticmethod(lm_step)
    #: the sampler (``kernels.text.decoding.sample``'s signature)
    sample_fn = staticmethod(decoding.sample)

    def fit_tokenizer(self, train_text: str, cfg: Any) -> Any:
        """The tokenizer, fitted on the training text only."""
        raise NotImplementedError

    def evaluate(self, model, held: torch.Tensor, cfg: Any, device) -> float:
        """The held-out score on ids (M,) int64 (default: mean NLL per token over seq_len windows)."""
        return rnn_lm.held_out_nll(model, held, cfg.seq_len, device)

    def data(self, cfg: Any, real: bool = False) -> tuple:
        """(tokenizer, train ids (N,), held-out ids (M,), train text, data description)."""
        text, desc = load_corpus(real)
        return (*rnn_lm.split_corpus(text, cfg.corpus_chars, lambda t: self.fit_tokenizer(t, cfg)), desc)

    def model(self, cfg: Any, vocab: int, ctx) -> torch.nn.Module:
        """A fresh LSTM language model seeded with the run's seed, on its device and dtype."""
        return lstm_lm(vocab, cfg.emb, cfg.hidden, cfg.num_layers, ctx.device, ctx.dtype, ctx.rng_seed)

    def run(self, ctx, cfg: Any, data: tuple, curve: bool = False):
        """Adam on ``cfg.steps`` random windows; ``evaluate`` before, every ``eval_every`` steps
        when ``curve`` and at the end: (model, evaluation steps, scores, training seconds, tokens)."""
        tok, train, held = data[:3]
        model = self.model(cfg, len(tok), ctx)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        ev_steps, ev, seconds, tokens = train_lm(
            model,
            opt,
            train,
            self.train_step,
            lambda m: self.evaluate(m, held, cfg, ctx.device),
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            seq_len=cfg.seq_len,
            seed=ctx.rng_seed,
            eval_every=cfg.eval_every if curve else None,
        )
        return model, ev_steps, ev, seconds, tokens

    def prepare(self, ctx, impl: str, config: Any) -> Prepared:
        """One training step of a fresh model on one batch of windows of the real corpus."""
        tok, train, *_ = self.data(config, real=True)
        return rnn_lm.window_step(
            self.train_step, self.model(config, len(tok), ctx), train, config, ctx.rng_seed, ctx.device
        )

    def sample(self, model, tok: Any, prompt: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        """ids (B, n) int64 on the CPU drawn by ``sample_fn`` after ``prompt`` (B, P) int64 (its
        first P - 1 tokens set the state, from zeros) in eval mode, with a generator seeded
        ``seed``; ``<pad>`` and ``<unk>`` banned. The model's train/eval mode is restored."""
        gen = torch.Generator(device=prompt.device).manual_seed(seed)
        was = model.training
        model.eval()
        state = None
        if prompt.shape[1] > 1:
            with torch.no_grad():
                _, state = model(prompt[:, :-1], return_state=True)
        ids = self.sample_fn(model.step, state, prompt[:, -1], n, generator=gen, banned=(tok.pad_id, tok.unk_id))
        model.train(was)
        return ids.cpu()
