"""6.04 positional_encoding: the check passes; RoPE with the wrong pairing (rotate-half on an
interleaved angle table, or the half-split layout instead of the paper's), a sinusoidal table
with the exponent i/d instead of 2i/d, or with sin and cos swapped, are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.layers.positional import sinusoidal_table

Task = REGISTRY.get("transformers.positional_encoding")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"rope: score depends only on m - n", "rope = complex-number formula"} <= set(rec.checks)


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_mixed_pairing(x, cos, sin):
    """Pairs feature i with i + D/2 (rotate_half) but lays the angles out for adjacent pairs."""
    c, s = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)  # (T, D): t0 t0 t1 t1 ...
    return x * c + _rotate_half(x) * s


def rope_half_split(x, cos, sin):
    """A consistent rotation of pairs (i, i + D/2): a valid RoPE, but not the paper's pairing."""
    c, s = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    return x * c + _rotate_half(x) * s


def test_wrong_rope_pairing_breaks_the_relative_property():
    class Wrong(Task):
        rope_fn = staticmethod(rope_mixed_pairing)

    expect_check_fails(Wrong, match="rope")


def test_mixed_pairing_fails_the_relative_position_property_alone():
    class Wrong(Task):
        rope_fn = staticmethod(rope_mixed_pairing)

        def _check_rope_formula(self, ctx):  # leave only the property to catch it
            pass

    expect_check_fails(Wrong, match="depend only on m - n")


def test_half_split_rope_is_caught_by_the_formula():
    class Wrong(Task):
        rope_fn = staticmethod(rope_half_split)

    expect_check_fails(Wrong, match="complex-number formula")


def test_exponent_i_over_d_is_caught():
    def wrong_table(max_len, d, base=10000.0, dtype=torch.float32, device=None):
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        inv = base ** (-torch.arange(d // 2, dtype=torch.float64) / d)  # i/d, not 2i/d
        a = pos * inv
        return torch.stack((a.sin(), a.cos()), -1).reshape(max_len, d).to(dtype)

    class Wrong(Task):
        table_fn = staticmethod(wrong_table)

    expect_check_fails(Wrong, match="sinusoidal table = formula")


def test_sin_cos_swapped_is_caught():
    def swapped(max_len, d, base=10000.0, dtype=torch.float32, device=None):
        t = sinusoidal_table(max_len, d, base, dtype=torch.float64)
        return t.reshape(max_len, d // 2, 2).flip(-1).reshape(max_len, d).to(dtype)

    class Wrong(Task):
        table_fn = staticmethod(swapped)

    expect_check_fails(Wrong, match="sinusoidal table = formula")
