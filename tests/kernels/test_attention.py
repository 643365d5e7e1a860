"""kernels/layers/attention.py: naive and blocked SDPA equal F.scaled_dot_product_attention (values and
gradients, every mask kind, block tails), refuse bad input, and the hand MHA equals
nn.MultiheadAttention."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kernels.layers.attention import MultiheadAttention, multi_head_attention, sdpa_blocked, sdpa_naive

D64 = torch.float64


def _qkv(B=2, H=3, L=9, S=13, D=8, Dv=None, dtype=D64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, H, L, D, generator=g, dtype=dtype),
        torch.randn(B, H, S, D, generator=g, dtype=dtype),
        torch.randn(B, H, S, Dv or D, generator=g, dtype=dtype),
    )


def _masks(B, H, L, S):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([S, max(1, S // 3)])[:B]
    keep = (torch.arange(S)[None] < lengths[:, None]).view(B, 1, 1, S)
    return {
        "none": (None, False),
        "is_causal": (None, True),
        "bool": (torch.rand(L, S, generator=g) > 0.3, False),
        "padding_bool": (keep, False),
        "padding_float": (torch.zeros(B, 1, 1, S, dtype=D64).masked_fill(~keep, -math.inf), False),
        "bias_per_head": (torch.randn(B, H, L, S, generator=g, dtype=D64), False),
        "key_row": ((torch.arange(S) % 3 != 0)[None], False),  # (1, S): broadcast over queries
    }


@pytest.mark.parametrize("L,S", [(9, 13), (13, 9), (1, 17), (16, 16)])
@pytest.mark.parametrize("kind", list(_masks(2, 3, 1, 1)))
def test_naive_and_blocked_equal_torch(L, S, kind):
    q, k, v = _qkv(L=L, S=S, Dv=5)
    mask, causal = _masks(2, 3, L, S)[kind]
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal), want)
    for block in (1, 4, 7, 64):
        torch.testing.assert_close(sdpa_blocked(q, k, v, attn_mask=mask, is_causal=causal, block_size=block), want)


def test_custom_scale_and_broadcast_heads():
    q, k, v = _qkv()
    k1, v1 = k[:, :1], v[:, :1]  # one key/value head shared by all query heads
    want = F.scaled_dot_product_attention(q, k1.expand_as(k), v1.expand_as(v), scale=0.3)
    torch.testing.assert_close(sdpa_naive(q, k1, v1, scale=0.3), want)
    torch.testing.assert_close(sdpa_blocked(q, k1, v1, scale=0.3, block_size=5), want)


def test_fully_masked_row_gives_zeros_like_torch():
    q, k, v = _qkv(L=4, S=6)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[2] = False
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    for out in (sdpa_naive(q, k, v, attn_mask=mask), sdpa_blocked(q, k, v, attn_mask=mask, block_size=4)):
        assert not out.isnan().any()
        assert (out[..., 2, :] == 0).all()
        torch.testing.assert_close(out, want)


@pytest.mark.parametrize("fn", [sdpa_naive, lambda *a, **kw: sdpa_blocked(*a, block_size=3, **kw)])
def test_gradients_equal_torch(fn):
    q, k, v = (t.requires_grad_() for t in _qkv(L=7, S=10))
    w = torch.randn(2, 3, 7, 8, dtype=D64)
    (F.scaled_dot_product_attention(q, k, v, is_causal=True) * w).sum().backward()
    want = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    (fn(q, k, v, is_causal=True) * w).sum().backward()
    for t, g in zip((q, k, v), want):
        torch.testing.assert_close(t.grad, g)


def test_large_logits_stay_finite_in_float32():
    q, k, v = _qkv(dtype=torch.float32)
    q = q * 1e3  # scores around 1e4: exp would overflow without the max shift
    want = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(sdpa_blocked(q, k, v, block_size=4), want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sdpa_naive(q, k, v), want, rtol=1e-4, atol=1e-4)


def test_dropout_is_seeded_and_scaled():
    q, k, v = _qkv()
    a = sdpa_naive(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(3))
    b = sdpa_naive(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.allclose(a, sdpa_naive(q, k, v))
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa_naive(q, k, v, dropout_p=1.0)


@pytest.mark.parametrize("fn", [sdpa_naive, sdpa_blocked])
def test_bad_input_is_refused(fn):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="not both"):
        fn(q, k, v, attn_mask=torch.ones(9, 13, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="last dim"):
        fn(q, k[..., :4], v)
    with pytest.raises(ValueError, match="same length"):
        fn(q, k, v[..., :5, :])
    with pytest.raises(ValueError, match="broadcast"):
        fn(q, k, v, attn_mask=torch.ones(9, 12, dtype=torch.bool))


def test_blocked_refuses_a_zero_block():
    with pytest.raises(ValueError, match="block_size"):
        sdpa_blocked(*_qkv(), block_size=0)


# -- multi-head attention ----------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
def test_mha_equals_torch_with_masks(batch_first, average):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 4, batch_first=batch_first).double().eval()
    mine = MultiheadAttention.from_torch(ref)
    assert set(mine.state_dict()) == set(ref.state_dict())
    q = torch.randn(2, 5, 16, dtype=D64) if batch_first else torch.randn(5, 2, 16, dtype=D64)
    kv = torch.randn(2, 7, 16, dtype=D64) if batch_first else torch.randn(7, 2, 16, dtype=D64)
    kpm = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
    attn = torch.ones(5, 7, dtype=torch.bool).triu(3)
    a = ref(q, kv, kv, key_padding_mask=kpm, attn_mask=attn, average_attn_weights=average)
    b = mine(q, kv, kv, key_padding_mask=kpm, attn_mask=attn, average_attn_weights=average)
    torch.testing.assert_close(b, a)


def test_mha_unbatched_and_no_weights():
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(8, 2).double().eval()
    mine = MultiheadAttention.from_torch(ref)
    x = torch.randn(6, 8, dtype=D64)
    torch.testing.assert_close(mine(x, x, x), ref(x, x, x))
    out, w = mine(x, x, x, need_weights=False)
    assert w is None
    torch.testing.assert_close(out, ref(x, x, x, need_weights=False)[0])


def test_mha_gradients_equal_torch():
    torch.manual_seed(2)
    ref = nn.MultiheadAttention(12, 3).double()
    mine = MultiheadAttention.from_torch(ref)
    x = torch.randn(5, 2, 12, dtype=D64)
    ref(x, x, x)[0].pow(2).sum().backward()
    mine(x, x, x)[0].pow(2).sum().backward()
    grads = dict(ref.named_parameters())
    for name, p in mine.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, msg=name)


def test_mha_refuses_bad_masks_and_widths():
    m = MultiheadAttention(8, 2)
    x = torch.randn(5, 3, 8)
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=torch.zeros(5, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible"):
        MultiheadAttention(10, 4)
    with pytest.raises(ValueError, match="not supported"):
        MultiheadAttention(8, 2, dropout=0.1)
    with pytest.raises(ValueError, match="in_proj_weight"):
        multi_head_attention(x, x, x, 2, torch.zeros(8, 8), None, torch.zeros(8, 8), None)
