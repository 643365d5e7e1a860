"""Transformer networks: pre-LN encoder/decoder blocks, an encoder classifier, a masked LM,
a GPT-style decoder with a KV cache, and an encoder-decoder for translation.

Blocks follow Vaswani et al. (2017) with the layer norm moved before each sub-layer
("pre-LN", Xiong et al. 2020; GPT-2), which trains without learning-rate warm-up::

    x = x + SelfAttention(LN(x))            (causal in a decoder)
    x = x + CrossAttention(LN(x), memory)   (encoder-decoder only)
    x = x + MLP(LN(x))                      MLP = Linear(d, d_ff) -> GELU -> Linear(d_ff, d)

Attention runs through ``F.scaled_dot_product_attention`` by default (the from-scratch
versions live in ``kernels/layers/attention.py``; any function with its signature can be passed
as ``sdpa=``). Positions: ``sinusoidal`` or ``learned`` tables added to the embeddings, or
``rope`` rotating queries and keys (``kernels/layers/positional.py``).

Padding: token id ``pad_id`` marks padding. Keys at padding positions are masked out of
every attention, and the classifier pools only over real tokens, so a sequence's logits do
not depend on how much padding follows it.

KV cache (:class:`KVCache`): a decoder generating token t+1 needs the keys and values of
tokens 0..t, which do not change once computed; the cache keeps them per layer in
preallocated (B, H, max_len, D) buffers, so each new token costs one row of work per
layer instead of a forward pass over the whole prefix.

Shape legend: B batch, T (L) sequence (query) length, S key length, V vocabulary,
E = d_model, H heads, D = E / H head dim, C classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels.layers.positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding

POSITIONALS = ("sinusoidal", "learned", "rope")
Sdpa = Callable[..., torch.Tensor]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Width and depth of a Transformer stack (vocabularies and classes come from the data)."""

    d_model: int = 64
    """E: features per token"""
    n_heads: int = 4
    """H: attention heads (d_model divisible by n_heads)"""
    n_layers: int = 2
    """blocks in the stack (each of the encoder and decoder, for encoder-decoder models)"""
    d_ff: int = 256
    """hidden features of each block's MLP (4 * d_model in most papers)"""
    max_len: int = 128
    """positions the positional table (or RoPE cache, or KV cache) covers, in tokens"""
    dropout: float = 0.0
    """dropout on embeddings, attention weights and sub-layer outputs (training only)"""
    positional: str = "learned"
    """"sinusoidal", "learned" (added to the embeddings) or "rope" (rotates q and k)"""

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"TransformerConfig: d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.positional not in POSITIONALS:
            raise ValueError(f"TransformerConfig: positional must be one of {POSITIONALS}, got {self.positional!r}")
        if (self.d_model // self.n_heads) % 2 and self.positional == "rope":
            raise ValueError("TransformerConfig: RoPE needs an even head dim d_model / n_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig: dropout must be in [0, 1), got {self.dropout}")


PRESETS: dict[str, TransformerConfig] = {
    "tiny": TransformerConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, max_len=64),
    "small": TransformerConfig(d_model=128, n_heads=4, n_layers=3, d_ff=512, max_len=256),
    "gen": TransformerConfig(d_model=256, n_heads=4, n_layers=4, d_ff=1024, max_len=512),
    "base": TransformerConfig(d_model=512, n_heads=8, n_layers=6, d_ff=2048, max_len=512),
}


def preset(name: str, **overrides: Any) -> TransformerConfig:
    """A named config (``tiny``, ``small``, ``gen``, ``base``) with fields replaced by ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"unknown transformer preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class KVCache:
    """Keys and values of every layer for positions 0..length-1, in preallocated buffers.

    ``k``, ``v``: (n_layers, B, H, max_len, D). ``update`` writes a layer's new rows at
    ``offset`` and returns the keys/values of positions 0..offset+L-1; the model advances
    ``length`` once per forward.
    """

    def __init__(
        self,
        n_layers: int,
        batch: int,
        n_heads: int,
        max_len: int,
        head_dim: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.k = torch.zeros(n_layers, batch, n_heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.max_len, self.length = max_len, 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        end = offset + k.shape[2]
        if end > self.max_len:
            raise IndexError(f"KVCache: positions up to {end - 1} exceed its max_len {self.max_len}")
        self.k[layer, :, :, offset:end] = k
        self.v[layer, :, :, offset:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]  # (B, H, end, D) views


class Attention(nn.Module):
    """Multi-head attention (self, or cross when ``memory`` is given) over F.sdpa-style ``sdpa``."""

    def __init__(self, config: TransformerConfig, rope: RotaryEmbedding | None = None, sdpa: Sdpa | None = None):
        super().__init__()
        E = config.d_model
        self.H, self.D, self.p = config.n_heads, E // config.n_heads, config.dropout
        self.q, self.kv, self.out = nn.Linear(E, E), nn.Linear(E, 2 * E), nn.Linear(E, E)
        self.rope = rope
        self.sdpa = sdpa or F.scaled_dot_product_attention

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        *,
        key_pad: torch.Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
        offset: int = 0,
    ) -> torch.Tensor:
        """x (B, L, E); memory (B, S, E) or None (self-attention); key_pad (B, S) True at padding keys."""
        B, L, E = x.shape
        src = x if memory is None else memory
        S = src.shape[1]
        q = self.q(x).view(B, L, self.H, self.D).transpose(1, 2)  # (B, H, L, D)
        k, v = self.kv(src).view(B, S, 2, self.H, self.D).permute(2, 0, 3, 1, 4)  # 2 x (B, H, S, D)
        if self.rope is not None and memory is None:
            q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.update(layer, k, v, offset)  # (B, H, offset + L, D)
        S = k.shape[2]
        mask, is_causal = None, False
        if causal and (L > 1 or key_pad is not None):
            if offset == 0 and key_pad is None and L == S:
                is_causal = True  # the kernel's own triangle: no mask tensor
            else:  # query i sits at position offset + i and sees keys 0..offset + i
                mask = torch.arange(S, device=x.device)[None, :] <= offset + torch.arange(L, device=x.device)[:, None]
        if key_pad is not None:
            keep = ~key_pad[:, None, None, :]  # (B, 1, 1, S), F.sdpa polarity: True = attend
            mask = keep if mask is None else mask & keep
        y = self.sdpa(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=self.p if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, L, E))  # (B, H, L, D) -> (B, L, E)


class Block(nn.Module):
    """Pre-LN block: self-attention, optional cross-attention, MLP; each with a residual."""

    def __init__(
        self,
        config: TransformerConfig,
        cross: bool = False,
        rope: RotaryEmbedding | None = None,
        sdpa: Sdpa | None = None,
    ):
        super().__init__()
        E = config.d_model
        self.ln1, self.attn = nn.LayerNorm(E), Attention(config, rope, sdpa)
        self.ln_x, self.cross = (nn.LayerNorm(E), Attention(config, None, sdpa)) if cross else (None, None)
        self.ln2 = nn.LayerNorm(E)
        self.mlp = nn.Sequential(nn.Linear(E, config.d_ff), nn.GELU(), nn.Linear(config.d_ff, E))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, *, key_pad=None, causal=False, memory=None, memory_pad=None, cache=None, layer=0, offset=0):
        x = x + self.drop(
            self.attn(self.ln1(x), key_pad=key_pad, causal=causal, cache=cache, layer=layer, offset=offset)
        )
        if self.cross is not None:
            x = x + self.drop(self.cross(self.ln_x(x), memory, key_pad=memory_pad))
        return x + self.drop(self.mlp(self.ln2(x)))


class Stack(nn.Module):
    """Token embedding + positions + blocks + final LayerNorm: ids (B, T) -> features (B, T, E)."""

    def __init__(
        self,
        config: TransformerConfig,
        vocab_size: int,
        *,
        cross: bool = False,
        pad_id: int | None = 0,
        sdpa: Sdpa | None = None,
    ):
        super().__init__()
        E, c = config.d_model, config
        self.config, self.pad_id = config, pad_id
        self.tok = nn.Embedding(vocab_size, E)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = {
            "sinusoidal": lambda: SinusoidalPositionalEncoding(c.max_len, E),
            "learned": lambda: LearnedPositionalEmbedding(c.max_len, E),
            "rope": lambda: None,
        }[c.positional]()
        rope = RotaryEmbedding(E // c.n_heads, c.max_len) if c.positional == "rope" else None
        self.blocks = nn.ModuleList(Block(c, cross, rope, sdpa) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(E)
        self.drop = nn.Dropout(c.dropout)

    def forward(
        self,
        ids: torch.Tensor,
        *,
        causal: bool = False,
        key_pad: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_pad: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        offset = cache.length if cache is not None else 0
        if offset + ids.shape[1] > self.config.max_len:
            raise IndexError(f"positions up to {offset + ids.shape[1] - 1} exceed max_len {self.config.max_len}")
        x = self.tok(ids)  # (B, T, E)
        if self.pos is not None:
            x = self.pos(x, offset)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(
                x,
                key_pad=key_pad,
                causal=causal,
                memory=memory,
                memory_pad=memory_pad,
                cache=cache,
                layer=i,
                offset=offset,
            )
        if cache is not None:
            cache.length = offset + ids.shape[1]
        return self.ln_f(x)


class EncoderClassifier(nn.Module):
    """Encoder + pooled linear head: ids (B, T) int64 -> logits (B, C).

    Pools the mean over real (non-padding) tokens; padding keys are masked in every layer,
    so appending padding does not change a sequence's logits.
    """

    def __init__(
        self, config: TransformerConfig, vocab_size: int, num_classes: int, pad_id: int = 0, sdpa: Sdpa | None = None
    ):
        super().__init__()
        self.encoder = Stack(config, vocab_size, pad_id=pad_id, sdpa=sdpa)
        self.head = nn.Linear(config.d_model, num_classes)
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == self.pad_id  # (B, T)
        h = self.encoder(ids, key_pad=pad)  # (B, T, E)
        keep = (~pad).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # (B, E)
        return self.head(pooled)


class MaskedLM(nn.Module):
    """BERT-style encoder with a language-model head tied to the token embedding: ids (B, T) -> (B, T, V)."""

    def __init__(self, config: TransformerConfig, vocab_size: int, pad_id: int = 0, sdpa: Sdpa | None = None):
        super().__init__()
        self.encoder = Stack(config, vocab_size, pad_id=pad_id, sdpa=sdpa)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(ids, key_pad=ids == self.pad_id)  # (B, T, E)
        return F.linear(h, self.encoder.tok.weight, self.bias)  # (B, T, V)


class GPT(nn.Module):
    """Decoder-only language model: ids (B, T) -> next-token logits (B, T, V); causal self-attention.

    With ``cache`` (from :meth:`new_cache`) ``ids`` are the *new* tokens only; their keys and
    values are appended to the cache and their logits returned.
    """

    def __init__(self, config: TransformerConfig, vocab_size: int, sdpa: Sdpa | None = None):
        super().__init__()
        self.config = config
        self.decoder = Stack(config, vocab_size, pad_id=None, sdpa=sdpa)
        self.lm_head = nn.Linear(config.d_model, vocab_size, bias=False)
        self.lm_head.weight = self.decoder.tok.weight  # tied (Press & Wolf 2017)

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        return self.lm_head(self.decoder(ids, causal=True, cache=cache))

    def new_cache(self, batch: int, cache_cls: type[KVCache] = KVCache) -> KVCache:
        c, w = self.config, self.lm_head.weight
        return cache_cls(
            c.n_layers, batch, c.n_heads, c.max_len, c.d_model // c.n_heads, device=w.device, dtype=w.dtype
        )

    @torch.no_grad()
    def generate(
        self, prompt: torch.Tensor, new_tokens: int, *, use_cache: bool = True, cache_cls: type[KVCache] = KVCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy continuation of prompt (B, T0): (tokens (B, new_tokens), logits (B, new_tokens, V)).

        Without the cache every step runs the model over the whole prefix. Raises IndexError
        when T0 + new_tokens exceeds max_len.
        """
        if prompt.shape[1] + new_tokens > self.config.max_len:
            raise IndexError(f"prompt {prompt.shape[1]} + {new_tokens} new tokens exceed max_len {self.config.max_len}")
        cache = self.new_cache(prompt.shape[0], cache_cls) if use_cache else None
        seq, feed, toks, logits = prompt, prompt, [], []
        for _ in range(new_tokens):
            out = self(feed, cache)[:, -1] if use_cache else self(seq)[:, -1]  # (B, V)
            nxt = out.argmax(-1, keepdim=True)  # (B, 1)
            toks.append(nxt)
            logits.append(out)
            seq, feed = torch.cat([seq, nxt], 1), nxt
        return torch.cat(toks, 1), torch.stack(logits, 1)


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder (Vaswani et al. 2017): (src (B, S), tgt_in (B, T)) -> logits (B, T, V_tgt)."""

    def __init__(
        self, config: TransformerConfig, src_vocab: int, tgt_vocab: int, pad_id: int = 0, sdpa: Sdpa | None = None
    ):
        super().__init__()
        self.encoder = Stack(config, src_vocab, pad_id=pad_id, sdpa=sdpa)
        self.decoder = Stack(config, tgt_vocab, cross=True, pad_id=pad_id, sdpa=sdpa)
        self.lm_head = nn.Linear(config.d_model, tgt_vocab)
        self.pad_id = pad_id

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = src == self.pad_id  # (B, S)
        return self.encoder(src, key_pad=pad), pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        h = self.decoder(tgt_in, causal=True, memory=memory, memory_pad=memory_pad)  # (B, T, E)
        return self.lm_head(h)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt_in, *self.encode(src))

    def step_fn(self, src: torch.Tensor):
        """(step_fn, initial state) for ``kernels.text.decoding.greedy``: the source is encoded once;
        each step re-runs the decoder on the prefix so far (``bos`` first), tokens int64 (B,)
        -> logits (B, V_tgt). The state is the prefix, int64 (B, t)."""
        memory, pad = self.encode(src)

        def step(tokens: torch.Tensor, state: torch.Tensor):
            prefix = torch.cat([state, tokens[:, None]], 1)  # (B, t + 1), bos first
            return self.decode(prefix, memory, pad)[:, -1], prefix

        return step, torch.empty((src.shape[0], 0), dtype=torch.long, device=src.device)
