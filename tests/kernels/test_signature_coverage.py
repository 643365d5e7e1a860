"""Issue 18, "coverage of torch's signature": arguments torch accepts that the from-scratch
operators used to refuse, now supported and equal to torch (torch computes every expected value
here), and the few still refused, refused by name.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kernels.autograd import functions
from kernels.layers import attention, conv, positional
from models.recurrent import GRU, LSTM, RECURRENT, RecurrentCase, RecurrentConfig, forward_backward, make_rnn

CONVS = (conv.conv2d_direct, conv.conv2d_im2col, conv.conv2d_unfold, conv.conv2d_zero_inserted)
F64 = torch.float64


def _grads(fn, *tensors):
    """(value, grads of a fixed random projection of it w.r.t. every tensor)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    return out.detach(), torch.autograd.grad((out * g).sum(), leaves)


# -- conv2d: padding strings, unbatched input, padding_mode --------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("fn", CONVS, ids=lambda f: f.__name__)
def test_conv_padding_same_and_valid_even_kernels_and_dilation(fn) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 9, 13, generator=g, dtype=F64)
    b = torch.randn(6, generator=g, dtype=F64)
    # even kernels with odd dilation: an odd total padding, the extra pixel on the right/bottom
    for (kh, kw), dil, pad in itertools.product([(2, 4), (3, 3), (1, 2)], [1, (2, 3), (3, 1)], ["same", "valid"]):
        w = torch.randn(6, 2, kh, kw, generator=g, dtype=F64)
        ref = F.conv2d(x, w, b, padding=pad, dilation=dil, groups=2)
        got = fn(x, w, b, padding=pad, dilation=dil, groups=2)
        torch.testing.assert_close(got, ref, msg=f"k={kh}x{kw} d={dil} {pad}")
        if pad == "same":
            assert got.shape[-2:] == x.shape[-2:]
    w = torch.randn(6, 2, 2, 4, generator=g, dtype=F64)
    (ref, ref_g) = _grads(lambda a, c: F.conv2d(a, c, b, padding="same", dilation=(1, 3), groups=2), x, w)
    (got, got_g) = _grads(lambda a, c: fn(a, c, b, padding="same", dilation=(1, 3), groups=2), x, w)
    torch.testing.assert_close(got, ref)
    for o, r in zip(got_g, ref_g):
        torch.testing.assert_close(o, r)


@pytest.mark.parametrize("fn", CONVS, ids=lambda f: f.__name__)
def test_conv_unbatched_input_and_every_padding_mode(fn) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 6, dtype=F64)
    for mode, pad in itertools.product(conv.PADDING_MODES, [1, (2, 0), (0, 3), "same", "valid"]):
        m = nn.Conv2d(4, 6, (2, 3), padding=pad, padding_mode=mode, dilation=(1, 2), groups=2).double()
        kw = dict(padding=pad, dilation=(1, 2), groups=2, padding_mode=mode)
        torch.testing.assert_close(fn(x, m.weight, m.bias, **kw), m(x), msg=f"{mode} {pad}")
        torch.testing.assert_close(fn(x[1], m.weight, m.bias, **kw), m(x[1]), msg=f"unbatched {mode} {pad}")
    m = nn.Conv2d(4, 6, 3, padding=2, padding_mode="reflect").double()
    (ref, ref_g) = _grads(lambda a, c: m._conv_forward(a, c, m.bias), x, m.weight)
    (got, got_g) = _grads(lambda a, c: fn(a, c, m.bias, padding=2, padding_mode="reflect"), x, m.weight)
    torch.testing.assert_close(got, ref)
    for o, r in zip(got_g, ref_g):
        torch.testing.assert_close(o, r)


def test_conv_pad_index_equals_f_pad() -> None:
    x = torch.arange(5.0).view(1, 1, 5)
    for mode, (a, b) in itertools.product(("reflect", "replicate", "circular"), [(0, 0), (1, 3), (4, 2), (2, 5)]):
        if mode == "reflect" and max(a, b) >= 5:
            continue
        want = F.pad(x, (a, b), mode=mode)[0, 0]
        torch.testing.assert_close(x[0, 0][conv.pad_index(5, a, b, mode)], want, msg=f"{mode} {a},{b}")


def test_conv_refusals_name_the_argument_and_limit() -> None:
    x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3)
    with pytest.raises(RuntimeError):  # torch refuses too
        nn.Conv2d(2, 3, 3, padding=4, padding_mode="reflect")(x)
    for fn in CONVS:
        with pytest.raises(ValueError, match="padding_mode='reflect' needs padding < input size"):
            fn(x, w, padding=4, padding_mode="reflect")
        with pytest.raises(ValueError, match="padding_mode='circular' needs padding <= input size"):
            fn(x, w, padding=5, padding_mode="circular")
        with pytest.raises(ValueError, match="padding_mode='mirror'"):
            fn(x, w, padding=1, padding_mode="mirror")
        with pytest.raises(ValueError, match="padding='same' needs stride 1"):
            fn(x, w, padding="same", stride=2)
        with pytest.raises(ValueError, match="unbatched"):
            fn(x[0, 0], w)


# -- LSTM / GRU: bidirectional, proj_size ------------------------------------------------------
CASES = [
    RecurrentCase(6, 4, 5, 7, 2, bidirectional=True),
    RecurrentCase(5, 3, 4, 6, 2, batch_first=True, initial_state=True, bidirectional=True),
    RecurrentCase(7, 5, 4, 6, 2, packed="unsorted", initial_state=True, bidirectional=True),
    RecurrentCase(6, 4, 3, 5, 1, packed="sorted", bidirectional=True),
    RecurrentCase(6, 3, 5, 7, 2, initial_state=True, proj_size=3),
    RecurrentCase(
        7, 4, 5, 6, 2, batch_first=True, packed="unsorted", initial_state=True, bidirectional=True, proj_size=2
    ),
]


@pytest.mark.parametrize(
    "cell,case",
    [(c, k) for c in ("lstm", "gru") for k in CASES if c == "lstm" or not k.proj_size],  # GRU: no proj_size
    ids=lambda v: v if isinstance(v, str) else v.label(),
)
def test_recurrent_bidirectional_and_projection_equal_torch(cell, case) -> None:
    x, lengths, enforce_sorted, hx, module = case.inputs(cell, "cpu", F64, seed=3)
    mine = RECURRENT[cell][0].from_torch(module)
    want = forward_backward(module, x, lengths=lengths, enforce_sorted=enforce_sorted, hx=hx)
    got = forward_backward(mine, x, lengths=lengths, enforce_sorted=enforce_sorted, hx=hx)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], msg=k)
    assert sum(p.numel() for p in mine.parameters()) == mine.config.n_params(mine.GATES)


def test_recurrent_unbatched_bidirectional_projection_and_round_trip() -> None:
    torch.manual_seed(0)
    ref = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2).double()
    mine = LSTM.from_torch(ref)
    x = torch.randn(4, 3, dtype=F64)  # (T, C) unbatched
    (out, (h, c)), (r_out, (r_h, r_c)) = mine(x), ref(x)
    assert out.shape == (4, 4) and h.shape == (4, 2) and c.shape == (4, 5)
    for a, b in ((out, r_out), (h, r_h), (c, r_c)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(mine.to_torch()(x)[0], r_out)
    manual = make_rnn("gru", RecurrentConfig(3, 5), "manual", bidirectional=True)
    assert isinstance(manual, GRU) and manual.config.bidirectional
    with pytest.raises(ValueError, match="proj_size=2: projections exist for the LSTM only"):
        make_rnn("gru", RecurrentConfig(3, 5, proj_size=2), "manual")
    with pytest.raises(ValueError, match="proj_size must be >= 0 and < hidden_size"):
        RecurrentConfig(3, 5, proj_size=5)
    with pytest.raises(ValueError, match="initial state must be"):
        mine(x, (torch.zeros(2, 2, dtype=F64), torch.zeros(4, 5, dtype=F64)))  # h needs L*D = 4 rows


# -- multi-head attention: kdim/vdim, add_bias_kv, add_zero_attn ------------------------------
@pytest.mark.parametrize("kdim,vdim", [(None, None), (6, 5)])
@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_kdim_vdim_bias_kv_zero_attn_equal_torch(kdim, vdim, bias_kv, zero_attn) -> None:
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(
        8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=kdim, vdim=vdim, batch_first=True
    ).double()
    own = attention.MultiheadAttention.from_torch(ref)
    assert set(own.state_dict()) == set(ref.state_dict())
    B, L, S = 3, 4, 5
    q = torch.randn(B, L, 8, dtype=F64)
    k, v = torch.randn(B, S, kdim or 8, dtype=F64), torch.randn(B, S, vdim or 8, dtype=F64)
    kpm = torch.rand(B, S, generator=torch.Generator().manual_seed(1)) > 0.6
    kpm[0] = True  # every real key of batch 0 masked: the appended bias/zero key remains
    am = torch.rand(L, S, generator=torch.Generator().manual_seed(2)) > 0.8
    for need_weights, average in ((True, True), (True, False), (False, True)):
        kw = dict(key_padding_mask=kpm, attn_mask=am, need_weights=need_weights, average_attn_weights=average)
        r_out, r_w = ref(q, k, v, **kw)
        o_out, o_w = own(q, k, v, **kw)
        torch.testing.assert_close(o_out, r_out)
        if need_weights:
            torch.testing.assert_close(o_w, r_w)
    ref(q, k, v)[0].pow(2).sum().backward()
    own(q, k, v)[0].pow(2).sum().backward()
    grads = dict(ref.named_parameters())
    for name, p in own.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, msg=name)


def test_mha_refusals_name_the_argument() -> None:
    with pytest.raises(ValueError, match="dropout=0.1 is not supported"):
        attention.MultiheadAttention(8, 2, dropout=0.1)
    m = attention.MultiheadAttention(8, 2, kdim=6)
    x = torch.randn(3, 1, 8)
    with pytest.raises(ValueError, match="k_proj_weight must be"):
        m(x, torch.randn(4, 1, 7), torch.randn(4, 1, 8))


# -- SDPA enable_gqa ------------------------------------------------------------------------------
def test_sdpa_enable_gqa_equals_torch() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 5, 8, generator=g, dtype=F64)
    k, v = torch.randn(2, 2, 7, 8, generator=g, dtype=F64), torch.randn(2, 2, 7, 4, generator=g, dtype=F64)
    mask = torch.rand(5, 7, generator=g) > 0.3
    for kw in ({}, {"is_causal": True}, {"attn_mask": mask}, {"attn_mask": mask.double().log()}):
        ref, ref_g = _grads(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, enable_gqa=True, **kw), q, k, v)
        for fn in (attention.sdpa_naive, attention.sdpa_blocked):
            got, got_g = _grads(lambda a, b, c: fn(a, b, c, enable_gqa=True, **kw), q, k, v)
            torch.testing.assert_close(got, ref)
            for o, r in zip(got_g, ref_g):
                torch.testing.assert_close(o, r)
    for fn in (attention.sdpa_naive, attention.sdpa_blocked):
        with pytest.raises(ValueError, match="enable_gqa=True needs key and value with the same number of heads"):
            fn(q, k[:, :1].expand(2, 4, 7, 8), v, enable_gqa=True)
        with pytest.raises(ValueError, match="need enable_gqa=True"):
            fn(q, k, v)


# -- softmax dtype= -------------------------------------------------------------------------------
def test_softmax_dtype_casts_before_the_operation_as_torch() -> None:
    x = (torch.randn(4, 7, generator=torch.Generator().manual_seed(0)) * 30).half()
    for dtype in (torch.float32, torch.float64):
        ref, (ref_g,) = _grads(lambda a: torch.softmax(a, -1, dtype=dtype), x)
        got, (got_g,) = _grads(lambda a: functions.softmax(a, -1, dtype=dtype), x)
        assert got.dtype == ref.dtype == dtype and got_g.dtype == ref_g.dtype == torch.float16
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(got_g, ref_g)
    ints = torch.arange(6).view(2, 3)
    torch.testing.assert_close(
        functions.softmax(ints, 1, dtype=torch.float32), torch.softmax(ints, 1, dtype=torch.float32)
    )
    with pytest.raises(TypeError, match="dtype=torch.int64: must be a floating"):
        functions.softmax(x, -1, dtype=torch.int64)


# -- RoPE: both pairings ------------------------------------------------------------------------
def _rope_meta(x: torch.Tensor, pos: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Meta's LLaMA reference (interleaved): view_as_complex over adjacent pairs times polar(1, m theta)."""
    D = x.shape[-1]
    freqs = 1.0 / base ** (torch.arange(0, D, 2, dtype=F64) / D)
    cis = torch.polar(torch.ones(len(pos), D // 2, dtype=F64), torch.outer(pos.to(F64), freqs))  # (T, D/2)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], D // 2, 2))
    return torch.view_as_real(z * cis).flatten(-2)


def _rope_hf(x: torch.Tensor, pos: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Hugging Face LLaMA / GPT-NeoX (half-split): x * cos + rotate_half(x) * sin, tables concatenated."""
    D = x.shape[-1]
    inv_freq = 1.0 / base ** (torch.arange(0, D, 2, dtype=F64) / D)
    emb = torch.cat((torch.outer(pos.to(F64), inv_freq),) * 2, dim=-1)  # (T, D)
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return x * emb.cos() + torch.cat((-x2, x1), dim=-1) * emb.sin()


def test_rope_interleaved_and_half_split_equal_their_reference_code() -> None:
    x = torch.randn(2, 3, 7, 16, generator=torch.Generator().manual_seed(0), dtype=F64)  # (B, H, T, D)
    pos = torch.arange(5, 12)
    cos, sin = positional.rope_angles(pos, 16, dtype=F64)
    for pairing, ref_fn, named in (
        ("interleaved", _rope_meta, positional.apply_rope_interleaved),
        ("half_split", _rope_hf, positional.apply_rope_half_split),
    ):
        want = ref_fn(x, pos)
        torch.testing.assert_close(positional.apply_rope(x, cos, sin, pairing), want)
        torch.testing.assert_close(named(x, cos, sin), want)
        torch.testing.assert_close(positional.rope_reference(x, pos, pairing=pairing), want)
        rot = positional.RotaryEmbedding(16, 20, pairing=pairing).double()
        torch.testing.assert_close(rot(x, offset=5), want.to(x.dtype), rtol=1e-6, atol=1e-6)  # float32 table
    # the same rotation up to a permutation: evens to the first half, odds to the second
    perm = torch.cat((torch.arange(0, 16, 2), torch.arange(1, 16, 2)))
    torch.testing.assert_close(_rope_hf(x[..., perm], pos), _rope_meta(x, pos)[..., perm])
    assert not torch.allclose(_rope_hf(x, pos), _rope_meta(x, pos))
    with pytest.raises(ValueError, match="pairing='neox'"):
        positional.apply_rope(x, cos, sin, "neox")
    with pytest.raises(ValueError, match="pairing='gptj'"):
        positional.RotaryEmbedding(16, 20, pairing="gptj")
