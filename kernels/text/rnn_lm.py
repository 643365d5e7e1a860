"""Pieces the recurrent language-model drills (rnn.char_rnn, rnn.next_word) share, and the
wrong versions their mutants plant.

* :func:`split_corpus`: the first ``chars`` characters of a text, split 90/10, a tokenizer
  fitted on the train part only;
* :func:`window_step`: one next-token training step on a fixed batch of random windows
  (what the bench times);
* :func:`held_out_nll`: mean NLL over non-overlapping held-out windows;
* :func:`perplexity`: exp(total NLL / predicted words) over batches of windows, and
  :func:`reference_perplexity`, the same in one float64 pass (what a check compares it with);
* wrong versions: :func:`never_steps` (no optimizer step), :func:`global_rng_sample` and
  :func:`no_ban_sample` (beside ``kernels.text.decoding.sample``), and the per-batch
  averages :func:`mean_of_batch_means` / :func:`mean_of_perplexities` (beside the right
  perplexity, exp(total NLL / predicted words)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.contract import Prepared
from harness.data.corpus import random_windows, split_windows
from kernels.text import decoding


def split_corpus(text: str, chars: int, fit: Callable[[str], Any]) -> tuple[Any, torch.Tensor, torch.Tensor, str]:
    """(tokenizer, train ids (N,) int64, held-out ids (M,) int64, train text): ``text[:chars]``
    cut 90/10; ``fit(train_text)`` builds the tokenizer, so held-out-only symbols become ``<unk>``."""
    text = text[:chars]
    cut = int(0.9 * len(text))
    tok = fit(text[:cut])
    return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), text[:cut]


def window_step(step_fn: Callable, model, train: torch.Tensor, cfg: Any, seed: int, device) -> Prepared:
    """A timer's one Adam step (lr ``cfg.lr``) of ``step_fn(model, opt, window)`` on
    ``cfg.batch_size`` windows (B, ``cfg.seq_len`` + 1) drawn with ``seed``; items are tokens."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(seed)
    window = random_windows(train, cfg.batch_size, cfg.seq_len, g).to(device)  # (B, T+1)
    return Prepared(fn=lambda: step_fn(model, opt, window), items=cfg.batch_size * cfg.seq_len, item_unit="tokens")


@torch.no_grad()
def held_out_nll(model, ids: torch.Tensor, seq_len: int, device) -> float:
    """Mean NLL (nats per token) over the non-overlapping windows of ``ids`` (N,), in one forward
    pass in eval mode (train mode restored)."""
    x, y = (t.to(device) for t in split_windows(ids, seq_len))  # (n, T) each
    model.eval()
    loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
    model.train()
    return float(loss)


@torch.no_grad()
def perplexity(model, x: torch.Tensor, y: torch.Tensor, batch: int, device) -> float:
    """exp(total NLL / predicted words) of windows ``x`` -> targets ``y`` (n, T) int64, summed
    over batches of ``batch`` windows (the last may be smaller), in eval mode (train mode restored)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)  # (b, T) each
        total += float(F.cross_entropy(model(xb).flatten(0, 1).float(), yb.flatten(), reduction="sum"))
        count += yb.numel()
    model.train()
    return math.exp(total / count)


@torch.no_grad()
def reference_perplexity(model, x: torch.Tensor, y: torch.Tensor, device) -> float:
    """:func:`perplexity` computed another way: one forward of all windows (n, T), float64
    log-softmax, gather of the targets, exp of minus the mean (eval mode, train mode restored)."""
    model.eval()
    logp = torch.log_softmax(model(x.to(device)).double(), dim=-1)  # (n, T, V)
    model.train()
    return float(logp.gather(-1, y.to(device)[..., None]).mean().neg().exp())


# -- wrong versions ---------------------------------------------------------------------------
def never_steps(model, opt, window: torch.Tensor) -> torch.Tensor:
    """``harness.train_text.lm_step`` without ``opt.step()``: gradients pile up, weights stay."""
    loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
    loss.backward()
    return loss.detach()


def global_rng_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    """``decoding.sample`` drawing from the global RNG: the generator passed in is ignored."""
    out, last = [], start
    for _ in range(steps):
        logits, state = step_fn(last, state)
        logits[:, list(banned)] = -math.inf
        last = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
        out.append(last)
    return torch.stack(out, 1)


def no_ban_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    """``decoding.sample`` that forgets to ban ``<pad>`` and ``<unk>``."""
    return decoding.sample(step_fn, state, start, steps, generator=generator, temperature=temperature)


def _batch_nll(model, x, y, batch: int) -> torch.Tensor:
    """Mean NLL of each batch of ``batch`` windows (the last batch may be smaller): (n_batches,)."""
    model.eval()
    with torch.no_grad():
        out = [
            F.cross_entropy(model(x[i : i + batch]).flatten(0, 1), y[i : i + batch].flatten())
            for i in range(0, len(x), batch)
        ]
    model.train()
    return torch.stack(out)


def mean_of_batch_means(model, x, y, batch: int, device=None) -> float:
    """exp of the mean of per-batch mean NLLs: the short last batch weighs like a full one."""
    return math.exp(float(_batch_nll(model, x, y, batch).mean()))


def mean_of_perplexities(model, x, y, batch: int, device=None) -> float:
    """The mean of per-batch perplexities (exp is convex: this is >= the true perplexity)."""
    return float(_batch_nll(model, x, y, batch).exp().mean())
