"""Wrong positional encodings: the mutants of transformers.positional_encoding, beside
:mod:`kernels.layers.positional` whose functions they mirror (same signatures); the task's
checks against the paper's formulas must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch

from kernels.layers.positional import sinusoidal_table


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)  # (..., D/2) each
    return torch.cat((-x2, x1), dim=-1)


def rope_mixed_pairing(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Pairs feature i with i + D/2 (rotate_half) but lays the angles out for adjacent pairs."""
    return x * cos.repeat_interleave(2, dim=-1) + _rotate_half(x) * sin.repeat_interleave(2, dim=-1)


def table_i_over_d(max_len, d, base=10000.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """The sinusoidal table with exponent i/d instead of 2i/d."""
    i = torch.arange(d // 2, dtype=torch.float64)
    a = torch.arange(max_len, dtype=torch.float64)[:, None] * base ** (-i / d)  # (T, d/2)
    return torch.stack((a.sin(), a.cos()), -1).reshape(max_len, d).to(dtype)


def table_sin_cos_swapped(max_len, d, base=10000.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """The sinusoidal table with cos in the even columns and sin in the odd ones."""
    t = sinusoidal_table(max_len, d, base, dtype=torch.float64)  # (T, d)
    return t.reshape(max_len, d // 2, 2).flip(-1).reshape(max_len, d).to(dtype)
