"""What m5.activation_checkpointing runs each policy of :mod:`kernels.autograd.block_checkpoint`
on: a GPT stack and its token ids built the same way for every policy, and the bytes a policy
keeps. ``cfg`` is an :class:`ActCkptConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from kernels.autograd.block_checkpoint import held_and_peak_bytes, lm_loss, torch_checkpoint
from models.transformer import GPT, TransformerConfig


@dataclasses.dataclass(frozen=True)
class ActCkptConfig:
    """A GPT-style stack and the batch of token ids it trains on."""

    layers: int
    """n: Transformer blocks"""
    d_model: int
    """E: features per token (d_ff = 4 E)"""
    heads: int
    """attention heads (E divisible by it)"""
    seq: int
    """T: tokens per sequence"""
    batch: int
    """B: sequences per step"""
    vocab: int = 64
    """V: token ids 0..V-1 (small: the logits stay a minor part of the memory)"""
    dropout: float = 0.1
    """dropout in every block: recomputation must redraw the same masks"""

    def label(self) -> str:
        return f"n={self.layers},E={self.d_model},T={self.seq},B={self.batch}"


def build_gpt(cfg, device, dtype: torch.dtype, seed: int) -> GPT:
    """The GPT of ``cfg`` (d_ff = 4 d_model, dropout on) from ``torch.manual_seed(seed)``, in train mode."""
    torch.manual_seed(seed)
    tc = TransformerConfig(cfg.d_model, cfg.heads, cfg.layers, 4 * cfg.d_model, cfg.seq, cfg.dropout)
    return GPT(tc, cfg.vocab).to(device, dtype).train()


def token_ids(cfg, device, seed: int) -> torch.Tensor:
    """(B, T) int64 token ids in [0, vocab), drawn on the CPU from ``seed`` (the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq), generator=g).to(device)  # (B, T)


def policy_bytes(
    model: GPT, ids: torch.Tensor, policy: str, device, ckpt: Callable = torch_checkpoint
) -> tuple[int, int]:
    """(held, peak) bytes of one forward + backward of the next-token loss under ``policy``
    (:func:`kernels.autograd.block_checkpoint.held_and_peak_bytes`)."""
    return held_and_peak_bytes(lambda: lm_loss(model, ids, policy, ckpt), list(model.parameters()), device)


def model_and_ids(cfg, device, dtype: torch.dtype, seed: int) -> tuple[GPT, torch.Tensor]:
    """(:func:`build_gpt`, :func:`token_ids`) of ``cfg`` from ``seed``: what every policy runs on."""
    return build_gpt(cfg, device, dtype, seed), token_ids(cfg, device, seed)


def loss_and_grads(
    model: GPT, ids: torch.Tensor, policy: str, seed: int, ckpt: Callable = torch_checkpoint
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """One forward + backward of the next-token loss under ``policy`` from ``torch.manual_seed(seed)``
    (so dropout draws the same masks for every policy): (the loss, detached; each parameter's
    gradient in ``parameters()`` order, None where none reached it)."""
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    loss = lm_loss(model, ids, policy, ckpt)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]
