"""What rnn.seq2seq's check feeds :func:`models.seq2seq.masked_cross_entropy`, and its wrong versions.

:func:`padding_probe` builds a padded batch and the loss's values under three readings (as given,
with the padded logits and target ids replaced by noise and out-of-range ids, and an independent
per-sequence sum of ``F.cross_entropy`` over the real tokens); the task asserts they agree and
that padded logits get no gradient. The WRONG functions below are the task's mutants, each a
plausible mistake its check must catch (``tests/tasks/test_mutants.py``).

Shapes: logits (B, T, V) float, targets (B, T) int64, lengths (B,) int64; losses are scalars.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def padding_probe(loss_fn: Callable, dtype: torch.dtype, device, generator: torch.Generator) -> dict:
    """``loss_fn`` on a (5, 7, 11) batch with lengths 7, 3, 1, 5, 6 (``generator`` draws everything).

    Returns a dict: ``loss`` (detached), ``noisy`` (the loss with padded logits replaced by
    100 x noise and padded ids by ids in [-5, 33), out of range included), ``reference`` (float64
    sum over sequences of the real tokens' cross-entropy, divided by their count), ``pad_grad``
    (the loss's gradient at the padded logits, (n_pad, V)).
    """
    B, T, V = 5, 7, 11
    logits = torch.randn(B, T, V, generator=generator, dtype=dtype).to(device).requires_grad_(True)
    targets = torch.randint(0, V, (B, T), generator=generator).to(device)
    lengths = torch.tensor([7, 3, 1, 5, 6], device=device)
    pad = torch.arange(T, device=device)[None, :] >= lengths[:, None]  # (B, T)
    loss = loss_fn(logits, targets, lengths)
    noise = 100 * torch.randn(B, T, V, generator=generator, dtype=dtype).to(device)
    bad_ids = torch.randint(-5, 3 * V, (B, T), generator=generator).to(device)
    noisy = loss_fn(torch.where(pad[..., None], noise, logits.detach()), torch.where(pad, bad_ids, targets), lengths)
    per_seq = [
        F.cross_entropy(logits[b, :n].double(), targets[b, :n], reduction="sum") for b, n in enumerate(lengths.tolist())
    ]
    (grad,) = torch.autograd.grad(loss, logits)
    reference = (sum(per_seq) / lengths.sum()).detach()
    return {"loss": loss.detach(), "noisy": noisy, "reference": reference, "pad_grad": grad[pad]}


def loss_over_padding(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """WRONG: averages over every position, padding included (the classic bug)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten().clamp(0, logits.shape[-1] - 1))


def mask_from_targets(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """WRONG: masks with targets != 0: right only while padded targets really are 0."""
    mask = targets != 0
    t = targets.flatten().clamp(0, logits.shape[-1] - 1)
    return (F.cross_entropy(logits.flatten(0, 1), t, reduction="none").view(targets.shape) * mask).sum() / mask.sum()


def never_steps(self, model, opt, batch) -> torch.Tensor:
    """WRONG ``train_step`` (a task method): backward but no ``opt.step()``: the model never changes."""
    src, src_len, tgt_in, tgt_out, tgt_len = batch
    loss = self.loss_fn(model(src, src_len, tgt_in), tgt_out, tgt_len)
    loss.backward()
    return loss.detach()
