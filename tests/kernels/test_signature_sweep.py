"""Issue 18: every from-scratch operator with a torch counterpart, over torch's own edge inputs.

Each case runs the operator and its torch counterpart on the same input: empty, 1-D (or
unbatched), broadcast, non-contiguous, NaN/inf and fully-masked. The verdict:

* torch returns a value -> ours returns the same (shape, dtype, values; NaN where torch has
  NaN), unless the case is a refusal on purpose (``refuse=``, the message it must carry);
* torch raises -> ours raises too (nothing invalid is silently accepted);
* whenever ours raises, it is a ValueError / TypeError / NotImplementedError (or the error
  class torch itself raises there), raised by the project's own code (the innermost frame is
  in this repository, not deep inside torch) with a message that names an argument of the
  operator.

Refused on purpose where torch accepts (each with a message naming the argument):
``huber_loss`` with input and target of different shapes (torch broadcasts them with a
warning that the result is likely wrong); ``MultiheadAttention(dropout > 0)`` (its random
mask cannot be compared with torch's draw for draw); conv2d ``padding='same'`` with stride > 1,
reflect padding >= the input size and circular padding > it refuse as torch does, by name.
Supported since issue 18 (tests/kernels/test_signature_coverage.py): conv2d 'same'/'valid',
unbatched input, padding_mode; bidirectional LSTM/GRU, LSTM proj_size; MHA kdim/vdim,
add_bias_kv, add_zero_attn; SDPA enable_gqa; softmax dtype=; RoPE interleaved/half_split.
Not swept: operators without a torch counterpart (RoPE tables, min-max normalise, KD loss)
and the Triton/C++/CUDA kernels (compiled or interpreted: their own tests cover them).
"""

from __future__ import annotations

import dataclasses
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kernels.autograd import functions
from kernels.layers import attention, batchnorm, conv, dropout, losses
from kernels.optim import clipping, optimizers
from kernels.tensor import cosine, indexing, iterator, matmul, one_hot, reshape, vectorize
from models.recurrent import GRU, LSTM

ROOT = str(Path(__file__).resolve().parents[2])
F64 = torch.float64
NAN, INF = float("nan"), float("inf")


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    """operator under test"""
    what: str
    """the edge: empty, 1-D, broadcast, non-contiguous, nan/inf, fully-masked"""
    ours: Callable[[], Any]
    ref: Callable[[], Any]
    names: tuple[str, ...]
    """argument names; a refusal's message must mention one"""
    refuse: str | None = None
    """regex of the message of a refusal on purpose (torch accepts the input)"""

    def __str__(self) -> str:
        return f"{self.op}[{self.what}]"


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _special(*shape: int) -> torch.Tensor:
    """NaN, +-inf, 0, negatives and positives in every row."""
    vals = torch.tensor([NAN, INF, -INF, 0.0, -1.5, 2.0], dtype=F64)
    n = 1
    for s in shape:
        n *= s
    return vals.repeat(n // 6 + 1)[:n].reshape(shape)


def _with_grad(fn: Callable[..., torch.Tensor], *xs: torch.Tensor) -> Callable[[], tuple]:
    """fn's value and the gradients of a fixed weighting of it w.r.t. xs."""

    def run():
        leaves = [x.detach().clone().requires_grad_(True) for x in xs]
        out = fn(*leaves)
        w = torch.linspace(-1, 1, max(out.numel(), 1), dtype=out.dtype)[: out.numel()].reshape(out.shape)
        return (out.detach(), *torch.autograd.grad((out * w).sum(), leaves, allow_unused=True))

    return run


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: got {type(got).__name__}, torch a tensor"
        assert got.shape == want.shape, f"{where}: shape {tuple(got.shape)}, torch {tuple(want.shape)}"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype}, torch {want.dtype}"
        torch.testing.assert_close(got, want, equal_nan=True, msg=lambda m: f"{where}: {m}")
    elif isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (a, b) in enumerate(zip(got, want)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert got == want or (got is None and want is None), f"{where}: {got!r}, torch {want!r}"


def _check(case: Case) -> None:
    try:
        want, torch_error = case.ref(), None
    except Exception as e:  # noqa: BLE001  torch's refusal, of any class, is what ours is held to
        want, torch_error = None, e
    try:
        got = case.ours()
    except Exception as e:  # noqa: BLE001  judged below: class, origin and message
        allowed = (ValueError, TypeError, NotImplementedError) + ((type(torch_error),) if torch_error else ())
        where = traceback.extract_tb(e.__traceback__)[-1]
        detail = f"{case}: {type(e).__name__}: {e} (at {where.filename}:{where.lineno})"
        assert isinstance(e, allowed), f"unclear refusal {detail}"
        assert where.filename.startswith(ROOT) and "site-packages" not in where.filename, f"deep traceback {detail}"
        msg = str(e).lower()
        # a name at the start of a word ("labels", "shapes"); short ones must be the whole word
        words = [rf"(?<![a-z]){re.escape(n.lower())}" + ("" if len(n) > 2 else "(?![a-z])") for n in case.names]
        named = any(re.search(w, msg) for w in words)
        assert named, f"refusal names none of {case.names}: {detail}"
        if torch_error is None:
            assert case.refuse is not None, f"refuses what torch accepts: {detail}"
            assert re.search(case.refuse, str(e)), f"refusal on purpose with another message: {detail}"
        return
    assert torch_error is None, f"{case}: torch raises {torch_error!r}, ours accepted the input"
    assert case.refuse is None, f"{case}: expected the refusal {case.refuse!r}, got a value"
    _same(got, want, str(case))


# -- the cases ------------------------------------------------------------------------------------
def _activations() -> list[Case]:
    fns = [
        ("relu", functions.relu, torch.relu),
        ("softmax", lambda x: functions.softmax(x, -1), lambda x: torch.softmax(x, -1)),
        ("softmax_dim0", lambda x: functions.softmax(x, 0), lambda x: torch.softmax(x, 0)),
        ("swish", functions.swish, F.silu),
        ("squared_relu", functions.squared_relu, lambda x: torch.relu(x).square()),
        ("log_softmax", lambda x: losses.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1)),
    ]
    inputs = {
        "empty (0, 3)": torch.empty(0, 3, dtype=F64),
        "empty (5, 0, 0)": torch.empty(5, 0, 0, dtype=F64),
        "0-d": torch.tensor(0.7, dtype=F64),
        "1-D": _rand(7),
        "non-contiguous": _rand(6, 8)[:, ::2].t(),
        "nan/inf": _special(4, 6),
        "fully-masked row": torch.tensor([[-INF, -INF, -INF], [0.0, -INF, 1.0]], dtype=F64),
    }
    cases = []
    for name, ours, ref in fns:
        for what, x in inputs.items():
            cases.append(Case(name, what, _with_grad(ours, x), _with_grad(ref, x), ("x", "input", "dim", "dimension")))
    x = _special(3, 4)
    for p in (0.0, 1.0):
        cases.append(
            Case(
                "dropout",
                f"nan/inf p={p}",
                lambda p=p: dropout.dropout(x, p, training=True),
                lambda p=p: F.dropout(x, p, training=True),
                ("p", "x"),
            )
        )
    cases.append(Case("dropout", "empty", lambda: dropout.dropout(x[:0], 0.5), lambda: F.dropout(x[:0], 0.5), ("x",)))
    return cases


def _losses() -> list[Case]:
    cases = []
    logits, target = _rand(4, 5), torch.tensor([1, 0, 4, 2])
    ce_inputs = {
        "empty batch mean": (torch.empty(0, 5, dtype=F64), torch.empty(0, dtype=torch.long), {}),
        "empty batch sum": (torch.empty(0, 5, dtype=F64), torch.empty(0, dtype=torch.long), {"reduction": "sum"}),
        "1-D logits": (_rand(5), torch.tensor(3), {}),
        "non-contiguous": (_rand(5, 4).t(), target, {}),
        "spatial (N, C, d)": (_rand(2, 5, 3), torch.tensor([[0, 1, -100], [4, -100, 2]]), {}),
        "nan/inf logits": (_special(4, 5), target, {}),
        "fully-masked mean": (logits, torch.full((4,), -100), {}),
        "fully-masked smoothing": (logits, torch.full((4,), -100), {"label_smoothing": 0.1}),
        "probabilities": (logits, torch.softmax(_rand(4, 5, seed=1), -1), {}),
        "class out of range": (logits, torch.tensor([1, 0, 5, 2]), {}),
        "weighted, masked": (logits, torch.tensor([1, -100, 4, 2]), {"weight": torch.rand(5, dtype=F64)}),
    }
    for what, (x, t, kw) in ce_inputs.items():
        cases.append(
            Case(
                "cross_entropy",
                what,
                _with_grad(lambda a, t=t, kw=kw: losses.cross_entropy(a, t, **kw), x),
                _with_grad(lambda a, t=t, kw=kw: F.cross_entropy(a, t, **kw), x),
                ("input", "target", "weight", "class", "reduction", "label_smoothing"),
            )
        )
    huber = {
        "empty": (torch.empty(0, dtype=F64), torch.empty(0, dtype=F64)),
        "1-D": (_rand(6), _rand(6, seed=1)),
        "non-contiguous": (_rand(4, 6)[:, ::2], _rand(4, 3, seed=1)),
        "nan/inf": (_special(6), torch.zeros(6, dtype=F64)),
        "shape mismatch": (_rand(3, 1), _rand(1, 4, seed=1)),
    }
    for what, (a, b) in huber.items():
        for red in ("mean", "sum", "none"):
            cases.append(
                Case(
                    "huber_loss",
                    f"{what} {red}",
                    lambda a=a, b=b, red=red: losses.huber_loss(a, b, red),
                    lambda a=a, b=b, red=red: F.huber_loss(a, b, red),
                    ("input", "target", "shape", "reduction"),
                    refuse=r"shape" if what == "shape mismatch" else None,
                )
            )
    return cases


def _tensor_ops() -> list[Case]:
    cases = []
    cos_inputs = {
        "empty rows": (torch.empty(0, 3, dtype=F64), torch.empty(0, 3, dtype=F64), -1),
        "empty reduced dim": (torch.empty(4, 0, dtype=F64), torch.empty(4, 0, dtype=F64), -1),
        "1-D": (_rand(5), _rand(5, seed=1), 0),
        "broadcast": (_rand(1, 2, 3), _rand(2, 1, 3, seed=1), -1),
        "broadcast reduced dim": (_rand(1, 2, 3), _rand(2, 1, 3, seed=1), -2),
        "non-contiguous": (_rand(6, 4).t(), _rand(4, 6, seed=1)[:, ::1], 0),
        "nan/inf": (_special(2, 6), _rand(2, 6), -1),
        "zero vectors": (torch.zeros(2, 3, dtype=F64), _rand(2, 3), -1),
        "not broadcastable": (_rand(2, 3), _rand(3, 3), -1),
    }
    for fn in (cosine.cosine_naive, cosine.cosine_fused):
        for what, (a, b, d) in cos_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    _with_grad(lambda x, y, fn=fn, d=d: fn(x, y, dim=d), a, b),
                    _with_grad(lambda x, y, d=d: F.cosine_similarity(x, y, dim=d), a, b),
                    ("x1", "x2", "dim", "broadcast", "shape"),
                )
            )
    mm_inputs = {
        "empty": (torch.empty(0, 3, dtype=F64), _rand(3, 2)),
        "empty inner": (torch.empty(2, 0, dtype=F64), torch.empty(0, 3, dtype=F64)),
        "1-D @ 1-D": (_rand(4), _rand(4, seed=1)),
        "1-D @ batch": (_rand(4), _rand(2, 4, 3, seed=1)),
        "broadcast batch": (_rand(2, 1, 3, 4), _rand(5, 4, 2, seed=1)),
        "non-contiguous": (_rand(4, 3).t(), _rand(2, 4, seed=1).t()),
        "nan/inf": (_special(3, 4), _rand(4, 2)),
        "inner mismatch": (_rand(3, 4), _rand(5, 2)),
        "0-d": (torch.tensor(2.0, dtype=F64), _rand(3)),
    }
    for fn in (matmul.matmul_loop, matmul.matmul_broadcast_sum, matmul.matmul_blocked):
        for what, (a, b) in mm_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    lambda a=a, b=b, fn=fn: fn(a, b),
                    lambda a=a, b=b: torch.matmul(a, b),
                    ("a", "b", "1d", "shape", "dim", "inner", "mat"),
                )
            )
    x = torch.arange(4 * 5 * 6, dtype=F64).reshape(4, 5, 6)
    idx_inputs = {
        "empty index": (x, (torch.tensor([], dtype=torch.long),)),
        "1-D tensor": (x[0, 0], (torch.tensor([5, -1, 0]),)),
        "broadcast index arrays": (x, (torch.tensor([[0], [3]]), slice(None), torch.tensor([1, 2, -1]))),
        "non-contiguous": (x.transpose(0, 2), (torch.tensor([1, 0]), slice(1, None, 2))),
        "out of range": (x, (torch.tensor([4]),)),
        "empty dim": (torch.empty(0, 3, dtype=F64), (slice(None), torch.tensor([2, 0]))),
    }
    for fn in (indexing.index_slice, indexing.index_gather):
        for what, (t, index) in idx_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    lambda t=t, index=index, fn=fn: fn(t, index),
                    lambda t=t, index=index: t[index],
                    ("index", "dim", "size", "bounds"),
                )
            )
    oh_inputs = {
        "empty, num_classes given": (torch.empty(0, dtype=torch.long), 4),
        "empty, inferred": (torch.empty(0, dtype=torch.long), -1),
        "1-D": (torch.tensor([0, 3, 1]), -1),
        "non-contiguous": (torch.tensor([[0, 1], [2, 3], [1, 0]]).t(), 5),
        "negative label": (torch.tensor([0, -1]), 3),
        "label >= num_classes": (torch.tensor([0, 3]), 3),
    }
    for fn in (one_hot.one_hot_scatter, one_hot.one_hot_compare, one_hot.one_hot_eye):
        for what, (lab, n) in oh_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    lambda lab=lab, n=n, fn=fn: fn(lab, n),
                    lambda lab=lab, n=n: F.one_hot(lab, n),
                    ("label", "num_classes", "class", "empty"),
                )
            )
    r = _rand(4, 6)
    rs_inputs = {
        "empty": (torch.empty(0, 3, dtype=F64), (-1,)),
        "empty infer": (torch.empty(0, 3, dtype=F64), (0, -1)),
        "1-D": (_rand(12), (3, -1)),
        "non-contiguous view": (r.t(), (-1,)),
        "non-contiguous compatible": (r[:, ::2], (2, 2, 3)),
        "bad numel": (r, (5, -1)),
    }
    for what, (t, shape) in rs_inputs.items():
        for name, ours, ref in (
            ("own_view", reshape.own_view, lambda t, s: t.view(s)),
            ("own_reshape", reshape.own_reshape, lambda t, s: t.reshape(s)),
        ):
            cases.append(
                Case(
                    name,
                    what,
                    lambda t=t, s=shape, f=ours: f(t, s),
                    lambda t=t, s=shape, f=ref: f(t, s),
                    ("view", "shape", "size"),
                )
            )
    for what, t in (("empty", torch.empty(2, 0, 3, dtype=F64)), ("0-d", torch.tensor(1.0)), ("non-contiguous", r.t())):
        cases.append(Case("own_flatten", what, lambda t=t: reshape.own_flatten(t), lambda t=t: t.flatten(), ("dim",)))
    ew_inputs = {
        "empty": (torch.empty(0, 3, dtype=F64), torch.empty(1, 3, dtype=F64)),
        "1-D": (_rand(5), _rand(5, seed=1)),
        "broadcast": (_rand(3, 1), _rand(1, 4, seed=1)),
        "non-contiguous": (_rand(4, 3).t(), _rand(3, 4, seed=1)),
        "nan/inf": (_special(6), _special(6).flip(0)),
        "not broadcastable": (_rand(3), _rand(4)),
    }
    for engine in (iterator.elementwise_loop, iterator.elementwise_strided):
        for what, (a, b) in ew_inputs.items():
            for op, ref in (("add", torch.add), ("maximum", torch.maximum), ("div", torch.div)):
                cases.append(
                    Case(
                        f"{engine.__name__}:{op}",
                        what,
                        lambda a=a, b=b, op=op, e=engine: e(op, a, b),
                        lambda a=a, b=b, ref=ref: ref(a, b),
                        ("shape", "broadcast", "op"),
                    )
                )
            cases.append(
                Case(
                    f"{engine.__name__}:exp",
                    what,
                    lambda a=a, e=engine: e("exp", a),
                    lambda a=a: torch.exp(a),
                    ("shape", "op"),
                )
            )
    pd_inputs = {
        "empty": (torch.empty(0, 3, dtype=F64), _rand(4, 3)),
        "non-contiguous": (_rand(3, 5).t(), _rand(4, 3)),
        "nan/inf": (_special(2, 3), _rand(4, 3)),
        "feature mismatch": (_rand(2, 3), _rand(4, 2)),
    }
    for what, (a, b) in pd_inputs.items():
        cases.append(
            Case(
                "pairwise_distances_vec",
                what,
                lambda a=a, b=b: vectorize.pairwise_distances_vec(a, b),
                lambda a=a, b=b: torch.cdist(a, b),
                ("x", "y", "feature", "shape"),
            )
        )
        cases.append(Case("gram_vec", what, lambda a=a: vectorize.gram_vec(a), lambda a=a: a @ a.T, ("x", "shape")))
    for what, h in (("empty", torch.empty(0, dtype=F64)), ("inf", torch.tensor([INF, -INF, 0.5, 1.0], dtype=F64))):
        cases.append(
            Case(
                "histogram_vec",
                what,
                lambda h=h: vectorize.histogram_vec(h, 4, 0.0, 1.0),
                lambda h=h: torch.histc(h, 4, 0.0, 1.0).long(),  # counts, as integers here
                ("x", "bins"),
            )
        )
    return cases


def _conv_attention() -> list[Case]:
    cases = []
    w, b = _rand(4, 2, 3, 3, seed=1), _rand(4, seed=2)
    conv_inputs = {
        "empty batch": (torch.empty(0, 2, 5, 5, dtype=F64), {}),
        "unbatched": (_rand(2, 5, 5), {"padding": 1}),
        "2-D input": (_rand(5, 5), {}),
        "non-contiguous": (_rand(2, 5, 5, 2).permute(0, 3, 1, 2), {"stride": 2}),
        "channels_last": (_rand(2, 2, 5, 5).to(memory_format=torch.channels_last), {"padding": "same"}),
        "nan/inf": (_special(1, 2, 5, 6), {"padding": (1, 0)}),
        "kernel larger than input": (_rand(1, 2, 2, 2), {}),
    }
    for fn in (conv.conv2d_direct, conv.conv2d_im2col, conv.conv2d_unfold, conv.conv2d_zero_inserted):
        for what, (x, kw) in conv_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    _with_grad(lambda a, fn=fn, kw=kw: fn(a, w, b, **kw), x),
                    _with_grad(lambda a, kw=kw: F.conv2d(a, w, b, **kw), x),
                    ("input", "weight", "padding", "output", "kernel"),
                )
            )
    q, k, v = _rand(2, 3, 4, 8), _rand(2, 3, 5, 8, seed=1), _rand(2, 3, 5, 6, seed=2)
    dead = torch.ones(4, 5, dtype=torch.bool)
    dead[1] = False  # query 1 sees no key
    sdpa_inputs = {
        "empty queries": (q[:, :, :0], k, v, {}),
        "empty keys": (q, k[:, :, :0], v[:, :, :0], {}),
        "empty batch": (q[:0], k[:0], v[:0], {}),
        "1-D": (_rand(8), _rand(8), _rand(8), {}),
        "2-D (L, D)": (q[0, 0], k[0, 0], v[0, 0], {}),
        "broadcast batch": (q[:, :1], k[:1], v[:1], {}),
        "non-contiguous": (
            _rand(2, 4, 3, 8).transpose(1, 2),  # (B, H, L, D) with L and H strides swapped
            _rand(2, 8, 3, 5, seed=1).transpose(1, 2).transpose(-1, -2),
            _rand(6, 5, 2, 3, seed=2).permute(2, 3, 1, 0),  # (B, H, S, Dv) from a (Dv, S, B, H) buffer
            {},
        ),
        "nan/inf query": (_special(2, 3, 4, 8), k, v, {}),
        "fully-masked row (bool)": (q, k, v, {"attn_mask": dead}),
        "fully-masked row (float)": (q, k, v, {"attn_mask": torch.zeros(4, 5, dtype=F64).masked_fill(~dead, -INF)}),
        "causal, L > S": (_rand(2, 3, 7, 8), k, v, {"is_causal": True}),
    }
    for fn in (attention.sdpa_naive, attention.sdpa_blocked):
        for what, (a, b_, c, kw) in sdpa_inputs.items():
            cases.append(
                Case(
                    fn.__name__,
                    what,
                    _with_grad(lambda a, b_, c, fn=fn, kw=kw: fn(a, b_, c, **kw), a, b_, c),
                    _with_grad(lambda a, b_, c, kw=kw: F.scaled_dot_product_attention(a, b_, c, **kw), a, b_, c),
                    ("query", "key", "value", "sdpa", "mask"),
                )
            )
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2, batch_first=True).double()
    mine = attention.MultiheadAttention.from_torch(ref)
    x = _rand(2, 3, 8)
    kpm_dead = torch.tensor([[True, True, True], [False, True, False]])
    mha_inputs = {
        "empty batch": (x[:0], {}),
        "unbatched (L, E)": (x[0], {}),
        "non-contiguous": (_rand(3, 2, 8).transpose(0, 1), {}),
        "nan/inf": (_special(2, 3, 8), {}),
        "fully-masked, weights": (x, {"key_padding_mask": kpm_dead}),
        "fully-masked, no weights": (x, {"key_padding_mask": kpm_dead, "need_weights": False}),
        "fully-masked attn_mask": (x, {"attn_mask": torch.ones(3, 3, dtype=torch.bool)}),
        "bad mask shape": (x, {"key_padding_mask": torch.zeros(2, 4, dtype=torch.bool)}),
    }
    for what, (t, kw) in mha_inputs.items():
        cases.append(
            Case(
                "MultiheadAttention",
                what,
                lambda t=t, kw=kw: mine(t, t, t, **kw),
                lambda t=t, kw=kw: ref(t, t, t, **kw),
                ("query", "key", "mask", "embed", "batch"),
            )
        )
    return cases


def _modules() -> list[Case]:
    cases = []
    for cls, tcls in ((LSTM, nn.LSTM), (GRU, nn.GRU)):
        torch.manual_seed(0)
        ref = tcls(3, 4, 2, bidirectional=True).double()
        mine = cls.from_torch(ref)
        rnn_inputs = {
            "empty batch": torch.empty(5, 0, 3, dtype=F64),
            "no time steps": torch.empty(0, 2, 3, dtype=F64),
            "unbatched (T, C)": _rand(5, 3),
            "non-contiguous": _rand(2, 5, 3).transpose(0, 1),
            "nan/inf": _special(5, 2, 3),
            "wrong features": _rand(5, 2, 4),
            "1-D": _rand(3),
        }
        for what, x in rnn_inputs.items():
            cases.append(
                Case(
                    cls.__name__,
                    what,
                    lambda x=x, m=mine: m(x),
                    lambda x=x, m=ref: m(x),
                    ("input", "features", "time steps", "batch"),
                )
            )
    for dims, cls, tcls in ((1, batchnorm.BatchNorm1d, nn.BatchNorm1d), (2, batchnorm.BatchNorm2d, nn.BatchNorm2d)):
        shape = (4, 3) if dims == 1 else (4, 3, 2, 2)
        bn_inputs = {
            "empty batch": torch.empty(0, *shape[1:], dtype=F64),
            "one value per channel": _rand(1, *shape[1:]),
            "1-D": _rand(3),
            "non-contiguous": _rand(*shape[::-1]).permute(*range(len(shape) - 1, -1, -1)),
            "nan/inf": _special(*shape),
        }
        for what, x in bn_inputs.items():
            for train in (True, False):
                cases.append(
                    Case(
                        cls.__name__,
                        f"{what} {'train' if train else 'eval'}",
                        lambda x=x, c=cls, t=train: c(3).double().train(t)(x),
                        lambda x=x, c=tcls, t=train: c(3).double().train(t)(x),
                        ("input", "expected", "channel", "batch"),
                    )
                )
    return cases


def _optim() -> list[Case]:
    cases = []

    def params(kind: str) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        if kind == "empty":
            shapes = [(0,), (3, 0)]
        elif kind == "1-D":
            shapes = [(5,)]
        else:
            shapes = [(4, 3), (2,)]
        ps = [torch.randn(s, generator=g, dtype=F64) for s in shapes]
        if kind == "non-contiguous":
            ps[0] = torch.randn(3, 4, generator=g, dtype=F64).t()
        return ps

    def grads(kind: str, ps: list[torch.Tensor], step: int) -> list[torch.Tensor | None]:
        g = torch.Generator().manual_seed(10 + step)
        out: list[torch.Tensor | None] = [torch.randn(p.shape, generator=g, dtype=F64) for p in ps]
        if kind == "nan/inf":
            out[0] = _special(*ps[0].shape)
        if kind == "no grad for one":
            out[1] = None
        return out

    def trajectory(opt_cls, kind: str, kw: dict) -> list[torch.Tensor]:
        ps = [nn.Parameter(p.clone()) for p in params(kind)]
        opt = opt_cls(ps, **kw)
        for step in range(3):
            for p, gr in zip(ps, grads(kind, ps, step)):
                p.grad = gr
            opt.step()
        return [p.detach() for p in ps]

    configs = [
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("Adam", {"lr": 0.1, "amsgrad": True}),
        ("AdamW", {"lr": 0.1}),
        ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ]
    for name, kw in configs:
        for kind in ("empty", "1-D", "non-contiguous", "nan/inf", "no grad for one"):
            cases.append(
                Case(
                    name,
                    kind,
                    lambda n=name, k=kind, kw=kw: trajectory(getattr(optimizers, n), k, kw),
                    lambda n=name, k=kind, kw=kw: trajectory(getattr(torch.optim, n), k, kw),
                    ("lr", "param", "momentum"),
                )
            )

    def clip(fn, kind: str, **kw):
        ps = [nn.Parameter(p.clone()) for p in params("1-D" if kind == "1-D" else "2")]
        for p, gr in zip(ps, grads("nan/inf" if kind.startswith("nan") else "x", ps, 0)):
            p.grad = gr
        if kind == "empty":
            ps = []
        total = fn(ps, **kw)
        return (total, [p.grad for p in ps])

    for kind in ("empty", "1-D", "nan/inf", "nan/inf, error_if_nonfinite"):
        kw: dict[str, Any] = {"max_norm": 1.0}
        if kind.endswith("error_if_nonfinite"):
            kw["error_if_nonfinite"] = True
        for norm in (2.0, INF):
            cases.append(
                Case(
                    "clip_grad_norm_",
                    f"{kind} p={norm}",
                    lambda k=kind, kw=kw, n=norm: clip(clipping.clip_grad_norm_, k, norm_type=n, **kw),
                    lambda k=kind, kw=kw, n=norm: clip(nn.utils.clip_grad_norm_, k, norm_type=n, **kw),
                    ("norm", "non-finite", "nonfinite"),
                )
            )
    return cases


CASES = _activations() + _losses() + _tensor_ops() + _conv_attention() + _modules() + _optim()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_equals_torch_or_refuses_clearly(case: Case) -> None:
    _check(case)


def test_sweep_covers_every_edge_kind() -> None:
    kinds = ("empty", "1-D", "broadcast", "non-contiguous", "nan/inf", "fully-masked")
    for kind in kinds:
        assert any(kind in c.what for c in CASES), kind
