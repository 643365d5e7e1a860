"""kernels/layers/positional.py: the sinusoidal table is the paper's formula, the learned table adds
its rows, RoPE is the paper's complex rotation with the relative-position property."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rope,
    rope_angles,
    rope_reference,
    sinusoidal_reference,
    sinusoidal_table,
)

D64 = torch.float64


@pytest.mark.parametrize("max_len,d", [(1, 2), (17, 6), (200, 64), (33, 128)])
def test_sinusoidal_table_is_the_formula(max_len, d):
    want = sinusoidal_reference(max_len, d)
    torch.testing.assert_close(sinusoidal_table(max_len, d, dtype=D64), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sinusoidal_table(max_len, d), want.float())


def test_sinusoidal_first_rows_by_hand():
    pe = sinusoidal_table(3, 4, dtype=D64)
    # d = 4: pair 0 has angle pos / 10000^0 = pos, pair 1 has pos / 10000^(2/4) = pos / 100
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=D64))
    a, b = torch.tensor(2.0, dtype=D64), torch.tensor(0.02, dtype=D64)
    torch.testing.assert_close(pe[2], torch.stack([a.sin(), a.cos(), b.sin(), b.cos()]))


def test_sinusoidal_module_offset_and_errors():
    pe = SinusoidalPositionalEncoding(20, 8)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(pe(x, offset=4), x + sinusoidal_table(20, 8)[4:9])
    assert not list(pe.state_dict())  # a buffer, not a parameter, and not saved
    with pytest.raises(IndexError, match="max_len"):
        pe(x, offset=16)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(4, 5)


def test_learned_embedding_adds_its_rows():
    emb = LearnedPositionalEmbedding(10, 4)
    x = torch.randn(3, 4, 4)
    torch.testing.assert_close(emb(x, offset=2), x + emb.weight[2:6].detach())
    assert emb.weight.numel() == 40
    with pytest.raises(IndexError, match="learned positions"):
        emb(x, offset=7)


@pytest.mark.parametrize("D", [2, 8, 64])
def test_rope_equals_the_complex_formula(D):
    x = torch.randn(2, 3, 11, D, dtype=D64)
    pos = torch.arange(5, 16)
    cos, sin = rope_angles(pos, D, dtype=D64)
    torch.testing.assert_close(apply_rope(x, cos, sin), rope_reference(x, pos))


def test_rotary_module_offset_matches_positions():
    rot = RotaryEmbedding(16, 64)
    x = torch.randn(2, 4, 6, 16)
    cos, sin = rope_angles(torch.arange(10, 16), 16)
    torch.testing.assert_close(rot(x, offset=10), apply_rope(x, cos, sin))
    with pytest.raises(IndexError, match="max_len"):
        rot(x, offset=60)
    with pytest.raises(ValueError, match="cos/sin"):
        apply_rope(x, cos[:3], sin[:3])


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 5000), n=st.integers(0, 5000), shift=st.integers(1, 3000))
def test_rope_score_depends_only_on_the_offset(m, n, shift):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 32, generator=g, dtype=D64)

    def score(a, b):
        ca, sa = rope_angles(torch.tensor([a]), 32, dtype=D64)
        cb, sb = rope_angles(torch.tensor([b]), 32, dtype=D64)
        return float((apply_rope(q[None], ca, sa) * apply_rope(k[None], cb, sb)).sum())

    assert score(m, n) == pytest.approx(score(m + shift, n + shift), abs=1e-9)


def test_rope_preserves_norms_and_is_identity_at_zero():
    x = torch.randn(5, 7, 16, dtype=D64)
    cos, sin = rope_angles(7, 16, dtype=D64)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="even"):
        rope_angles(4, 5)
