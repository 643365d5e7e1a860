"""Training, decoding and scoring pieces of a word-level encoder-decoder translator.

For ``models.transformer.Seq2SeqTransformer`` (Vaswani et al. 2017) with a
``harness.data.parallel.ParallelVocab``: the teacher-forced training step (cross-entropy of
``model(src, tgt_in)`` against ``tgt_out``, padding id 0 carrying no loss), greedy translation
(``kernels.text.decoding.greedy``: the source encoded once, the decoder re-run on the prefix at
each step) and the cross-attention map of one translated sentence.

Shapes: src (B, S), tgt_in / tgt_out (B, T) int64, 0-padded; logits (B, T, V_tgt).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from harness.data import ParallelSet
from kernels.layers.attention_maps import record_attention
from kernels.text.decoding import greedy


def teacher_forcing_loss(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor):
    """Mean cross-entropy of ``model(src, tgt_in)`` (B, T, V) against ``tgt_out`` (B, T) over the
    non-padding positions (id 0 is ignored: padding carries no loss); a scalar with its graph."""
    logits = model(src, tgt_in)  # (B, T, V_tgt)
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)


def packed_step(S: int):
    """A ``harness.train.fit`` step for inputs packed as (src | tgt_in) along dim 1, the first ``S``
    columns the source (so fit can batch one tensor): one AdamW step on :func:`teacher_forcing_loss`."""

    def step(model, opt, x, y, loss_fn):
        opt.zero_grad(set_to_none=True)
        loss = teacher_forcing_loss(model, x[:, :S], x[:, S:], y)  # x (B, S + T) -> (B, S), (B, T)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def unseen(train: ParallelSet, test: ParallelSet) -> ParallelSet:
    """The pairs of ``test`` whose source sentence is not among ``train``'s sources."""
    seen = set(train.sources)
    keep = [i for i, s in enumerate(test.sources) if s not in seen]
    return ParallelSet([test.sources[i] for i in keep], [test.targets[i] for i in keep], test.description)


@torch.no_grad()
def translate(model: nn.Module, vocab, sources: list[str], device) -> tuple[list[str], int, float]:
    """Greedy translations of ``sources`` (at most source length + 8 tokens each): (texts, tokens
    generated, seconds of decoding). The model is in eval mode meanwhile, train mode after."""
    model.eval()
    src, _ = vocab.src.encode_batch(sources)  # (B, S)
    fn, state = model.step_fn(src.to(device))
    t0 = time.perf_counter()
    out = greedy(fn, state, batch_size=len(sources), bos=vocab.bos, eos=vocab.eos, max_len=src.shape[1] + 8,
                 device=device)  # fmt: skip
    seconds = time.perf_counter() - t0
    model.train()
    seqs = out.sequences()
    return [vocab.decode(s) for s in seqs], sum(map(len, seqs)), seconds


@torch.no_grad()
def cross_attention(model: nn.Module, vocab, source: str, hyp: str, device) -> tuple[torch.Tensor, list, list]:
    """The last decoder layer's cross-attention, mean over heads, while the model reads ``source`` and
    produces ``hyp`` (teacher-forced): (map (T_out, S), source words, output words + "<eos>")."""
    tgt_in = torch.tensor([[vocab.bos, *vocab.tgt.encode(hyp).tolist()]], device=device)  # (1, T)
    with record_attention(model) as maps:
        model.eval()(vocab.src.encode(source)[None].to(device), tgt_in)
    model.train()
    return maps[-1][0].mean(0), vocab.src.split(source), [*vocab.tgt.split(hyp), "<eos>"]
