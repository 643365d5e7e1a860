"""kernels.rng.philox: bit-exact with Triton's tl.randint / tl.rand (run in the interpreter),
Random123's known answers, the dropout keep rule, and planted wrong generators caught."""

from __future__ import annotations

import importlib

import pytest
import torch

import kernels.rng.philox as P

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

# the kernel runs on CPU tensors under the interpreter, on CUDA when triton compiles
DEVICE = "cpu" if importlib.import_module("kernels.triton").INTERPRETER else "cuda"


@triton.jit
def _draw_kernel(OFF, OUT_I, OUT_F, seed, N, BLOCK: tl.constexpr):
    i = tl.arange(0, BLOCK)
    mask = i < N
    offs = tl.load(OFF + i, mask=mask, other=0)
    tl.store(OUT_I + i, tl.randint(seed, offs).to(tl.int64), mask=mask)
    tl.store(OUT_F + i, tl.rand(seed, offs), mask=mask)


def _triton_draws(seed: int, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tl.randint as int64, tl.rand) for 1-D ``offsets`` (int32 or int64), via the kernel."""
    n = offsets.numel()
    out_i = torch.empty(n, dtype=torch.int64, device=DEVICE)
    out_f = torch.empty(n, dtype=torch.float32, device=DEVICE)
    _draw_kernel[(1,)](offsets.to(DEVICE), out_i, out_f, seed, n, BLOCK=triton.next_power_of_2(n))
    return out_i.cpu(), out_f.cpu()


def _offsets(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    offs = torch.cat([torch.arange(70), torch.randint(0, 2**31 - 1, (50,), generator=g)])
    if dtype == torch.int64:  # counters past 2**32 use the high word c1
        offs = torch.cat([offs, torch.tensor([2**32 - 1, 2**32, 2**32 + 3, 2**40 + 5, 2**62, 2**63 - 1])])
    return offs.to(dtype)


@pytest.mark.parametrize("seed", [0, 1, 42, 1234, 2**31 - 1, 2**31 + 11, 2**40 + 7, 2**63 - 1, -1])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_bit_exact_with_triton(seed, dtype):
    offs = _offsets(dtype)
    ti, tf = _triton_draws(seed, offs)
    assert torch.equal(P.philox_randint(seed, offs), ti)
    # compare float bit patterns, not values: "bit-exact" includes rounding
    assert torch.equal(P.philox_uniform(seed, offs).view(torch.int32), tf.view(torch.int32))


@pytest.mark.parametrize(
    "counter, key, expected",
    [  # Random123 kat_vectors, philox4x32 with 10 rounds
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_random123_known_answers(counter, key, expected):
    out = P.philox4x32(*(torch.tensor([c]) for c in counter), *key)
    assert tuple(int(w) for w in out) == expected


def test_golden_values_for_other_implementations():
    # Pinned outputs (checked equal to tl.randint / tl.rand in the interpreter): the CUDA
    # and CPU C++ dropout kernels of torchdrills must reproduce exactly these.
    assert P.philox_randint(0, torch.arange(4)).tolist() == [0x6627E8D5, 0xF8E4CCA4, 0x04FAA329, 0xC990EF29]
    offs = torch.tensor([0, 1, 2, 3, 2**32 + 1])
    assert P.philox_randint(1234, offs).tolist() == [0x2090B348, 0x9EEEDE35, 0x3FC9C8D8, 0xB6269A3E, 0x81327A55]
    u = P.philox_uniform(1234, torch.arange(4))
    assert u.tolist() == [0.2544158697128296, 0.758335292339325, 0.49834543466567993, 0.5769469141960144]
    keep = "".join("1" if k else "0" for k in P.dropout_mask(1234, 32, 0.5).tolist())
    assert keep == "01010001100100101111001101011110"


def test_uniform_range_and_statistics():
    u = P.philox_uniform(3, torch.arange(200_000))
    assert u.dtype == torch.float32
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.005  # 6 sigma for n = 2e5 is ~0.004
    # the largest draw maps below 1.0: v = 2**31 - 1 rounds to 2**31 in fp32
    top = torch.tensor([2**31 - 1], dtype=torch.float32) * torch.tensor(P.UNIFORM_SCALE, dtype=torch.float32)
    assert float(top) < 1.0


def test_dropout_mask_rule():
    offs = torch.arange(50_000)
    keep = P.dropout_mask(11, offs, 0.3)
    assert keep.dtype == torch.bool and keep.shape == offs.shape
    assert abs(float(keep.float().mean()) - 0.7) < 0.01
    assert torch.equal(keep, P.philox_uniform(11, offs) > torch.tensor(0.3, dtype=torch.float32))
    assert torch.equal(P.dropout_mask(11, 50_000, 0.3), keep)  # int form = arange offsets
    assert bool(P.dropout_mask(11, offs, 0.0).all())  # p == 0 keeps all without drawing
    assert not bool(P.dropout_mask(11, offs, 1.0).any())
    # 2-D offsets keep their shape
    assert P.dropout_mask(11, offs.view(100, 500), 0.3).shape == (100, 500)


def test_seeds_and_offsets_decorrelate():
    offs = torch.arange(4096)
    a, b = P.dropout_mask(1, offs, 0.5), P.dropout_mask(2, offs, 0.5)
    agree = float((a == b).float().mean())
    assert 0.45 < agree < 0.55  # independent masks agree half the time


def test_errors():
    with pytest.raises(TypeError, match="seed"):
        P.philox_randint(1.5, torch.arange(3))
    with pytest.raises(ValueError, match="seed"):
        P.philox_randint(2**64, torch.arange(3))
    with pytest.raises(TypeError, match="integer"):
        P.philox_randint(1, torch.arange(3.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        P.dropout_mask(1, 10, 1.5)
    with pytest.raises(ValueError, match="numel"):
        P.dropout_mask(1, -1, 0.5)


# --- planted bugs: each wrong generator must fail the comparison used above -----------


def _planted_wrong_round_b(seed, offs):
    real = P.PHILOX_ROUND_B
    try:
        P.PHILOX_ROUND_B = real ^ 1
        return P.philox_randint(seed, offs)
    finally:
        P.PHILOX_ROUND_B = real


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda s, o: P.philox_randint(s, o, n_rounds=9), id="nine-rounds"),
        pytest.param(lambda s, o: P.philox_randint(s, o + 1), id="offset-off-by-one"),
        pytest.param(lambda s, o: P.philox_randint(s + 1, o), id="seed-off-by-one"),
        pytest.param(lambda s, o: P.philox_randint(s << 32, o), id="seed-words-swapped"),
        pytest.param(_planted_wrong_round_b, id="wrong-constant"),
    ],
)
def test_planted_wrong_generator_is_caught(wrong):
    offs = _offsets(torch.int64)
    ti, _ = _triton_draws(5, offs)
    assert torch.equal(P.philox_randint(5, offs), ti)
    assert not torch.equal(wrong(5, offs), ti)


def test_planted_wrong_float_conversion_is_caught():
    offs = _offsets(torch.int32)
    _, tf = _triton_draws(9, offs)
    x = P.philox_randint(9, offs)
    no_fold = x.to(torch.float32) * 2.0**-32  # the naive uint32 -> [0, 1) map
    assert not torch.equal(no_fold.view(torch.int32), tf.view(torch.int32))
