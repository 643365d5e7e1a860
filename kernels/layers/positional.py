"""Positional encodings by hand: sinusoidal, learned and rotary (RoPE).

Sinusoidal (Vaswani et al., "Attention Is All You Need", 2017, section 3.5), for position
``pos`` and feature pair ``i`` of a d-wide model::

    PE[pos, 2i]     = sin(pos / 10000^(2i/d))
    PE[pos, 2i + 1] = cos(pos / 10000^(2i/d))

added to the token embeddings. Learned: a trainable (max_len, d) table, one row per
position, added the same way (BERT, GPT-2). Rotary (Su et al., "RoFormer: Enhanced
Transformer with Rotary Position Embedding", 2021, eq. 34): instead of adding anything, each
adjacent feature pair (x[2i], x[2i+1]) of a query or key at position m is rotated by the
angle m * theta_i, theta_i = base^(-2i/d)::

    x'[2i]     = x[2i] cos(m theta_i) - x[2i+1] sin(m theta_i)
    x'[2i + 1] = x[2i] sin(m theta_i) + x[2i+1] cos(m theta_i)

i.e. the complex number x[2i] + j x[2i+1] times e^{j m theta_i}. Because rotations compose,
<RoPE(q, m), RoPE(k, n)> = Re sum_i q_i conj(k_i) e^{j (m - n) theta_i} depends on the
positions only through m - n: attention scores see relative positions.

Two pairings are in use, and checkpoints trained with one are wrong under the other, so
every RoPE function here takes ``pairing=``:

* ``"interleaved"`` (default): feature 2i with 2i + 1, the paper's layout, used by GPT-J
  (mesh-transformer-jax ``rotate_every_two``) and Meta's LLaMA reference code (the complex
  view ``view_as_complex(x.reshape(..., D/2, 2))``).
* ``"half_split"``: feature i with i + D/2 (``rotate_half``), used by GPT-NeoX and the
  Hugging Face LLaMA/Mistral code (``cos``/``sin`` tables concatenated with themselves).

The two are the same rotation up to a permutation of the features (interleaved = half-split
after moving the even features to the first half and the odd ones to the second).

Angles are computed in float64 and cast, so long tables stay accurate in float32.
Shape legend: T positions, d (or D) features, B batch, H heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PAIRINGS = ("interleaved", "half_split")
"""RoPE feature pairings: (2i, 2i+1) as RoFormer/GPT-J/Meta LLaMA, (i, i+D/2) as GPT-NeoX/HF LLaMA."""


def _check_pairing(pairing: str, what: str) -> None:
    if pairing not in PAIRINGS:
        raise ValueError(
            f"{what}: pairing={pairing!r}: choose 'interleaved' (GPT-J, the paper) or 'half_split' (GPT-NeoX, HF LLaMA)"
        )


def _even(d: int, what: str) -> None:
    if d < 2 or d % 2:
        raise ValueError(f"{what}: the feature width must be even and >= 2 (features come in pairs), got {d}")


def sinusoidal_table(
    max_len: int,
    d_model: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """PE (max_len, d_model): the sinusoidal table of Vaswani et al. (2017).

    Raises ValueError for an odd d_model or max_len < 1.
    """
    _even(d_model, "sinusoidal_table")
    if max_len < 1:
        raise ValueError(f"sinusoidal_table: max_len must be >= 1, got {max_len}")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (T, 1)
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,) = 10000^(-2i/d)
    angles = pos * inv_freq  # (T, d/2)
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(max_len, d_model)  # (T, d/2, 2) -> (T, d)
    return pe.to(dtype=dtype, device=device)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table: x (B, T, d) -> x + PE[offset : offset + T].

    The table is a non-trainable buffer (not saved in the state dict).
    """

    def __init__(self, max_len: int, d_model: int, base: float = 10000.0):
        super().__init__()
        self.max_len = max_len
        self.register_buffer("pe", sinusoidal_table(max_len, d_model, base), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.max_len:
            raise IndexError(
                f"positions {offset}..{offset + T - 1} exceed max_len {self.max_len}; build a longer table"
            )
        return x + self.pe[offset : offset + T].to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trainable table: x (B, T, d) -> x + W[offset : offset + T], W (max_len, d) ~ N(0, 0.02^2).

    Unlike the sinusoidal table it cannot describe a position it was not trained on, and
    has max_len * d parameters.
    """

    def __init__(self, max_len: int, d_model: int, init_std: float = 0.02):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * init_std)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.max_len:
            raise IndexError(f"positions {offset}..{offset + T - 1} exceed the {self.max_len} learned positions")
        return x + self.weight[offset : offset + T]


def rope_angles(
    positions: torch.Tensor | int, head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (T, head_dim/2), of the angles positions[t] * theta_i, theta_i = base^(-2i/D).

    ``positions``: int T (positions 0..T-1) or an int64 (T,) tensor. Raises ValueError for an odd head_dim.
    """
    _even(head_dim, "rope_angles")
    if isinstance(positions, int):
        positions = torch.arange(positions)
    theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (D/2,)
    angles = positions.to(torch.float64)[:, None] * theta.to(positions.device)  # (T, D/2)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pairing: str = "interleaved") -> torch.Tensor:
    """Rotate each feature pair of x (..., T, D) by the angles in cos/sin (T, D/2) (from :func:`rope_angles`).

    ``pairing="interleaved"`` rotates (x[2i], x[2i+1]) (the paper, GPT-J); ``"half_split"``
    rotates (x[i], x[i + D/2]) (GPT-NeoX, Hugging Face LLaMA). Pair i turns by angle i in
    both; only which two features form pair i differs. Returns x's shape and dtype.
    Raises ValueError when cos/sin do not match (T, D/2), for odd D or an unknown pairing.
    """
    _check_pairing(pairing, "apply_rope")
    T, D = x.shape[-2], x.shape[-1]
    if cos.shape != (T, D // 2) or sin.shape != cos.shape or D % 2:
        raise ValueError(
            f"apply_rope: x (..., {T}, {D}) needs even D and cos/sin of shape ({T}, {D // 2}), got "
            f"{tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if pairing == "half_split":
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]  # (..., T, D/2) each: pair i is (x1[i], x2[i])
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, D)
    xe, xo = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each: the two members of every pair
    out = torch.stack((xe * cos - xo * sin, xe * sin + xo * cos), dim=-1)  # (..., T, D/2, 2)
    return out.flatten(-2)  # (..., T, D), pairs back in place


def apply_rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rope` with pairs (2i, 2i+1): RoFormer, GPT-J, Meta's LLaMA reference."""
    return apply_rope(x, cos, sin, "interleaved")


def apply_rope_half_split(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rope` with pairs (i, i + D/2): GPT-NeoX, Hugging Face LLaMA (``rotate_half``)."""
    return apply_rope(x, cos, sin, "half_split")


class RotaryEmbedding(nn.Module):
    """RoPE with cached angles for positions 0..max_len-1: x (..., T, D) -> rotated x.

    ``forward(x, offset)`` rotates row t by position offset + t (for a KV cache).
    ``pairing``: ``"interleaved"`` (default, the paper / GPT-J) or ``"half_split"`` (GPT-NeoX,
    HF LLaMA); see the module docstring.
    """

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0, pairing: str = "interleaved"):
        super().__init__()
        _check_pairing(pairing, "RotaryEmbedding")
        self.max_len, self.pairing = max_len, pairing
        cos, sin = rope_angles(max_len, head_dim, base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.max_len:
            raise IndexError(f"positions {offset}..{offset + T - 1} exceed max_len {self.max_len}")
        return apply_rope(x, self.cos[offset : offset + T], self.sin[offset : offset + T], self.pairing)


def rope_reference(
    x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0, pairing: str = "interleaved"
) -> torch.Tensor:
    """RoPE as the paper writes it, with complex numbers: (x_a + j x_b) * e^{j m theta_i}, where
    (x_a, x_b) = (x[2i], x[2i+1]) for ``pairing="interleaved"``, (x[i], x[i + D/2]) for ``"half_split"``.

    x (..., T, D) real, positions int64 (T,). Computed in float64/complex128; returns x's dtype.
    """
    _check_pairing(pairing, "rope_reference")
    D = x.shape[-1]
    _even(D, "rope_reference")
    x64 = x.to(torch.float64)
    if pairing == "interleaved":
        z = torch.view_as_complex(x64.reshape(*x.shape[:-1], D // 2, 2).contiguous())  # (..., T, D/2)
    else:
        z = torch.complex(x64[..., : D // 2], x64[..., D // 2 :])  # (..., T, D/2)
    theta = torch.tensor([base ** (-2 * i / D) for i in range(D // 2)], dtype=torch.float64)
    rot = torch.polar(
        torch.ones(len(positions), D // 2, dtype=torch.float64), positions.to(torch.float64)[:, None] * theta
    )  # (T, D/2) unit complex numbers
    r = z * rot  # (..., T, D/2)
    if pairing == "interleaved":
        return torch.view_as_real(r).reshape(x.shape).to(x.dtype)  # (..., T, D/2, 2) -> (..., T, D)
    return torch.cat((r.real, r.imag), dim=-1).to(x.dtype)  # (..., T, D)


def sinusoidal_reference(max_len: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The table position by position with ``math.sin``/``math.cos``, exactly as the paper's formula.

    A Python double loop (max_len * d_model evaluations): for checking, not for use. float64.
    """
    pe = [[0.0] * d_model for _ in range(max_len)]
    for pos in range(max_len):
        for i in range(d_model // 2):
            angle = pos / base ** (2 * i / d_model)
            pe[pos][2 * i] = math.sin(angle)
            pe[pos][2 * i + 1] = math.cos(angle)
    return torch.tensor(pe, dtype=torch.float64)
