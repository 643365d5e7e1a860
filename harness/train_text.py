"""Training and decoding helpers of the text tasks (language models, RNN encoder-decoders).

* :func:`lm_step`: one optimizer step of next-token prediction on windows (B, T+1);
* :func:`seq2seq_batch` / :func:`train_seq2seq`: teacher-forced training of a
  ``models.seq2seq.Seq2Seq`` on an :class:`harness.data.parallel.Encoded` set, a
  task-supplied ``step_fn`` doing each optimizer step (so a task can plant a wrong one);
* :func:`translate` (greedy, ``kernels.text.decoding.greedy``) and :func:`score` (exact
  match and position-wise token accuracy).

Time is training time only (a device synchronize before reading the clock).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.data.parallel import Encoded, ParallelVocab, load_translation_pairs
from kernels.text.decoding import greedy
from models.seq2seq import Seq2Seq, Seq2SeqConfig, masked_cross_entropy


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Data, model and budget of one RNN encoder-decoder translation run (5.04, 5.05)."""

    n_train: int
    """training sentence pairs (synthetic: drawn with seed = run seed)"""
    n_test: int
    """held-out pairs (synthetic: another seed, so mostly unseen sentences)"""
    max_adjectives: int
    """synthetic sources have 0..max_adjectives adjectives per noun phrase: 5..5+2k words"""
    hidden: int
    """H: GRU state width (embeddings are H/2 wide)"""
    steps: int
    """optimizer steps (the budget)"""
    batch_size: int = 32
    """sentence pairs per step"""
    lr: float = 1e-2
    """Adam learning rate (gradients clipped to norm 1)"""
    attention: str = "bahdanau"
    """"none", "bahdanau" or "luong" (models.seq2seq)"""
    min_exact: float = 0.8
    """share of held-out sentences the check demands translated exactly, in [0, 1]"""

    def label(self) -> str:
        return f"H={self.hidden},attn={self.attention},steps={self.steps},bs={self.batch_size}"


def load_encoded(cfg: TranslationConfig, seed: int, real: bool = False):
    """(vocab, train, test, description): pairs as padded ids, vocabulary from train only."""
    train, test, desc = load_translation_pairs(
        cfg.n_train, cfg.n_test, seed=seed, max_adjectives=cfg.max_adjectives, real=real
    )
    vocab = ParallelVocab(train)
    return vocab, vocab.encode(train), vocab.encode(test), desc


def build_seq2seq(cfg: TranslationConfig, vocab: ParallelVocab, attention: str, device, dtype, seed: int) -> Seq2Seq:
    """A seeded ``Seq2Seq`` (GRU, embeddings H/2, attention width H) for ``vocab``."""
    torch.manual_seed(seed)
    mc = Seq2SeqConfig(len(vocab.src), vocab.tgt_size, emb=cfg.hidden // 2, hidden=cfg.hidden, attention=attention)
    return Seq2Seq(dataclasses.replace(mc, attn_dim=cfg.hidden)).to(device, dtype)


def seq2seq_step(model, opt, batch, loss_fn: Callable = masked_cross_entropy) -> torch.Tensor:
    """One Adam step with teacher forcing and gradients clipped to norm 1; the detached loss."""
    src, src_len, tgt_in, tgt_out, tgt_len = batch
    loss = loss_fn(model(src, src_len, tgt_in), tgt_out, tgt_len)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.detach()


def lm_step(model, opt, window: torch.Tensor) -> torch.Tensor:
    """Zero grads, next-token cross-entropy of ``model(window[:, :-1])`` (B, T, V) against
    ``window[:, 1:]``, backward, step; the detached loss."""
    logits = model(window[:, :-1])  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seq2seq_batch(enc: Encoded, idx: torch.Tensor, device) -> tuple[torch.Tensor, ...]:
    """(src, src_len, tgt_in, tgt_out, tgt_len) of rows ``idx`` on ``device``, trimmed to the
    longest source and target among them (padding columns no row needs cost time)."""
    t, s = int(enc.tgt_len[idx].max()), int(enc.src_len[idx].max())
    parts = (enc.src[idx, :s], enc.src_len[idx], enc.tgt_in[idx, :t], enc.tgt_out[idx, :t], enc.tgt_len[idx])
    return tuple(x.to(device) for x in parts)


def train_seq2seq(
    model,
    opt,
    train: Encoded,
    step_fn: Callable[[Any, Any, tuple], torch.Tensor],
    *,
    steps: int,
    batch_size: int,
    seed: int,
) -> tuple[list[float], float, int]:
    """``steps`` optimizer steps on random batches of ``train``: (losses, seconds, target tokens)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    losses, tokens = [], 0
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, train.src.shape[0], (batch_size,), generator=g)
        losses.append(step_fn(model, opt, seq2seq_batch(train, idx, device)))
        tokens += int(train.tgt_len[idx].sum())
    _sync(device)
    return torch.stack(losses).float().cpu().tolist(), time.perf_counter() - t0, tokens


@torch.no_grad()
def translate(model, vocab: ParallelVocab, enc: Encoded) -> list[str]:
    """Greedy translations of every source of ``enc`` by a ``models.seq2seq.Seq2Seq``."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    src, src_len = enc.src.to(device), enc.src_len.to(device)
    step, state, _ = model.decoding_fns(src, src_len)
    out = greedy(
        step,
        state,
        batch_size=src.shape[0],
        bos=vocab.bos,
        eos=vocab.eos,
        max_len=enc.tgt_in.shape[1] + 2,
        device=device,
    )
    model.train(was)
    return [vocab.decode(s) for s in out.sequences()]


def score(hyps: list[str], refs: list[str]) -> tuple[float, float]:
    """(exact-match share, position-wise token accuracy over the references' tokens)."""
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
    hit = total = 0
    for h, r in zip(hyps, refs):
        hw, rw = h.split(), r.split()
        hit += sum(a == b for a, b in zip(hw, rw))
        total += len(rw)
    return exact, hit / max(total, 1)


@torch.no_grad()
def attention_map(model, vocab: ParallelVocab, source: str, max_extra: int = 4) -> tuple[torch.Tensor, list, list]:
    """Greedy-decode one ``source`` with a ``Seq2Seq`` that has attention and keep each step's
    weights: (weights (T_out, S) float CPU, source tokens, output tokens with ``<eos>``)."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    src = vocab.src.encode(source)[None].to(device)  # (1, S)
    enc, mask, kp, state = model.encode(src, torch.tensor([src.shape[1]]))
    y, rows, out = torch.tensor([vocab.bos], device=device), [], []
    for _ in range(src.shape[1] + max_extra):
        logits, state, w = model.decode_step(y, state, enc, mask, kp)
        if w is None:
            raise ValueError("attention_map: the model has no attention")
        y = logits.argmax(-1)  # (1,)
        rows.append(w[0].float().cpu())
        out.append("<eos>" if int(y) == vocab.eos else vocab.tgt.itos[int(y)])
        if int(y) == vocab.eos:
            break
    model.train(was)
    return torch.stack(rows), vocab.src.split(source), out


def record_attention_map(ctx, title: str, model, vocab: ParallelVocab, source: str, caption: str) -> None:
    """``ctx.heatmap`` of :func:`attention_map` on ``source``: source words across (x), the greedy
    output words down (y), each row one decoder step's attention weights."""
    w, src, out = attention_map(model, vocab, source)
    ctx.heatmap(title, w, x=src, y=out, x_label="source word", y_label="output word", caption=caption)


def lstm_lm(vocab: int, emb: int, hidden: int, num_layers: int, device, dtype, seed: int):
    """A seeded ``models.sequence.SequenceModel`` language model: embedding -> LSTM -> logits over ``vocab``."""
    from models.sequence import SequenceModel, SequenceModelConfig

    torch.manual_seed(seed)
    mc = SequenceModelConfig(
        vocab_size=vocab, input_size=emb, hidden_size=hidden, output_size=vocab, num_layers=num_layers
    )
    return SequenceModel(mc).to(device, dtype)


def train_lm(
    model,
    opt,
    train_ids: torch.Tensor,
    step_fn: Callable[[Any, Any, torch.Tensor], torch.Tensor],
    evaluate: Callable[[Any], float],
    *,
    steps: int,
    batch_size: int,
    seq_len: int,
    seed: int,
    eval_every: int | None = None,
) -> tuple[list[int], list[float], float, int]:
    """``steps`` steps of ``step_fn`` on random windows (B, seq_len + 1) of ``train_ids``;
    ``evaluate(model)`` before training, every ``eval_every`` steps (None: never) and at the
    end. Returns (evaluation steps, evaluations, training seconds, training tokens)."""
    from harness.data.corpus import random_windows

    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    ev_steps, ev, seconds = [0], [evaluate(model)], 0.0
    for step in range(1, steps + 1):
        window = random_windows(train_ids, batch_size, seq_len, g).to(device)  # (B, T+1)
        _sync(device)
        t0 = time.perf_counter()
        step_fn(model, opt, window)
        _sync(device)
        seconds += time.perf_counter() - t0
        if step == steps or (eval_every and step % eval_every == 0):
            ev_steps.append(step)
            ev.append(evaluate(model))
    return ev_steps, ev, seconds, steps * batch_size * seq_len


def train_loop(
    model,
    opt,
    draw: Callable[[torch.Generator], Any],
    step_fn: Callable[[Any, Any, Any], torch.Tensor],
    *,
    steps: int,
    seed: int,
    evaluate: Callable[[Any], float] | None = None,
    eval_every: int | None = None,
) -> tuple[list[float], list[int], list[float], float]:
    """``steps`` calls of ``step_fn(model, opt, draw(g))`` (``g`` seeded with ``seed``; drawing
    is not timed); ``evaluate(model)`` every ``eval_every`` steps (None: only) after the last.
    Returns (losses per step, evaluation steps, evaluations, training seconds)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    losses, ev_steps, ev, seconds = [], [], [], 0.0
    for step in range(1, steps + 1):
        batch = draw(g)
        _sync(device)
        t0 = time.perf_counter()
        losses.append(step_fn(model, opt, batch))
        _sync(device)
        seconds += time.perf_counter() - t0
        if evaluate is not None and (step == steps or (eval_every and step % eval_every == 0)):
            ev_steps.append(step)
            ev.append(evaluate(model))
    return torch.stack(losses).float().cpu().tolist(), ev_steps, ev, seconds


def length_batch(data: tuple[torch.Tensor, ...], idx: torch.Tensor, device) -> tuple[torch.Tensor, ...]:
    """Rows ``idx`` of (ids (N, T), lengths (N,), labels) trimmed to their longest length;
    ids and labels on ``device``, lengths stay on the CPU (``pack_padded_sequence`` wants them there)."""
    ids, lengths, y = data
    n = int(lengths[idx].max())
    y = y[idx, :n] if y.dim() == 2 else y[idx]
    return ids[idx, :n].to(device), lengths[idx], y.to(device)


def length_step(model, opt, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Zero grads, cross-entropy of ``model(ids, lengths)`` (B, C) against labels (B,) for a batch
    (ids, lengths, labels) from :func:`length_batch`, backward, step; the detached loss."""
    ids, lengths, y = batch
    loss = F.cross_entropy(model(ids, lengths), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def random_length_batches(data: tuple[torch.Tensor, ...], batch_size: int, device) -> Callable:
    """A ``draw(g)`` for :func:`train_loop`: ``batch_size`` rows of (ids (N, T), lengths (N,), labels)
    drawn uniformly (with replacement) by the generator ``g``, through :func:`length_batch`."""
    return lambda g: length_batch(data, torch.randint(0, data[0].shape[0], (batch_size,), generator=g), device)


@torch.no_grad()
def length_accuracy(model, data: tuple[torch.Tensor, ...], device, batch: int = 500) -> float:
    """Accuracy of ``model(ids, lengths).argmax(-1)`` on (ids (N, T), lengths (N,), labels (N,)),
    in batches trimmed to their longest length; the model's train/eval mode is restored."""
    ids, lengths, y = data
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, ids.shape[0], batch):
        n = int(lengths[i : i + batch].max())
        pred = model(ids[i : i + batch, :n].to(device), lengths[i : i + batch]).argmax(-1).cpu()
        correct += int((pred == y[i : i + batch]).sum())
    model.train(was)
    return correct / ids.shape[0]
