"""Check a ``CastPolicy`` op by op against torch.autocast on this torch build.

For each probe (an op call with freshly built inputs) and each input-dtype variant, the
op runs twice: under torch's autocast (the reference) and under ``ManualAutocast(policy)``
with autocast off. The results must agree in dtype (or raise the same exception type) and,
where real values exist, be bit-identical: the policy performs the very casts autocast
performs, so the arithmetic is the same.

CUDA without a GPU: the CUDA policy is checked with fake tensors
(``torch._subclasses.fake_tensor.FakeTensorMode``): tensors created with device="cuda"
inside the mode carry the CUDA dispatch keys, so ``torch.set_autocast_enabled("cuda")``
routes them through the real AutocastCUDA kernels, and meta kernels produce the output
dtype (no values). This is how the float16 lists are verified on a CPU-only machine; on a
machine with CUDA the same probes run on real tensors.

Variants (dtype of the first floating input, dtype of the others): "f32" (f32, f32),
"low" (low, low), "mixed" (f32, low), "f64" (f64, f64: autocast leaves doubles alone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kernels.amp.policy import CastPolicy, ManualAutocast

__all__ = ["OpProbe", "PROBES", "Mismatch", "compare_policy", "fake_cuda_mode", "VARIANTS"]

VARIANTS = ("f32", "low", "mixed", "f64")


@dataclass(frozen=True)
class OpProbe:
    """name: the Python-level op name; call(R, I): runs the op on inputs made by
    R(*shape, first=bool) (a floating tensor, first floating input or not) and I(*values)
    (a long tensor), both on the probe's device."""

    name: str
    call: Callable


def _probes() -> tuple[OpProbe, ...]:
    P = OpProbe
    return (
        # --- lower precision (both devices)
        P("linear", lambda R, I: F.linear(R(3, 4, first=True), R(5, 4), R(5))),
        P("matmul", lambda R, I: torch.matmul(R(2, 3, 4, first=True), R(4, 5))),
        P("__matmul__", lambda R, I: R(3, 4, first=True) @ R(4)),
        P("mm", lambda R, I: torch.mm(R(3, 4, first=True), R(4, 5))),
        P("bmm", lambda R, I: torch.bmm(R(2, 3, 4, first=True), R(2, 4, 5))),
        P("baddbmm", lambda R, I: torch.baddbmm(R(2, 3, 5, first=True), R(2, 3, 4), R(2, 4, 5))),
        P("addmm", lambda R, I: torch.addmm(R(3, 5, first=True), R(3, 4), R(4, 5))),
        P("addbmm", lambda R, I: torch.addbmm(R(3, 5, first=True), R(2, 3, 4), R(2, 4, 5))),
        P("conv1d", lambda R, I: F.conv1d(R(1, 2, 7, first=True), R(3, 2, 3))),
        P("conv2d", lambda R, I: F.conv2d(R(1, 2, 5, 5, first=True), R(3, 2, 3, 3), R(3), padding=1)),
        P("conv3d", lambda R, I: F.conv3d(R(1, 2, 4, 4, 4, first=True), R(3, 2, 2, 2, 2))),
        P("conv_transpose2d", lambda R, I: F.conv_transpose2d(R(1, 2, 4, 4, first=True), R(2, 3, 3, 3))),
        P("prelu", lambda R, I: F.prelu(R(3, 4, first=True), R(1))),
        P(
            "scaled_dot_product_attention",
            lambda R, I: F.scaled_dot_product_attention(R(1, 2, 4, 8, first=True), R(1, 2, 4, 8), R(1, 2, 4, 8)),
        ),
        P("linalg_vecdot", lambda R, I: torch.linalg.vecdot(R(3, 4, first=True), R(3, 4))),
        P("einsum", lambda R, I: torch.einsum("ij,jk->ik", R(3, 4, first=True), R(4, 2))),
        P("tensordot", lambda R, I: torch.tensordot(R(3, 4, first=True), R(4, 2), 1)),
        P("mv", lambda R, I: torch.mv(R(3, 4, first=True), R(4))),
        P("addmv", lambda R, I: torch.addmv(R(3, first=True), R(3, 4), R(4))),
        # --- float32 ops
        P("mse_loss", lambda R, I: F.mse_loss(R(3, 4, first=True), R(3, 4))),
        P("l1_loss", lambda R, I: F.l1_loss(R(3, 4, first=True), R(3, 4))),
        P("huber_loss", lambda R, I: F.huber_loss(R(3, 4, first=True), R(3, 4))),
        P("smooth_l1_loss", lambda R, I: F.smooth_l1_loss(R(3, 4, first=True), R(3, 4))),
        P("cross_entropy", lambda R, I: F.cross_entropy(R(3, 4, first=True), I(0, 3, 1))),
        P("nll_loss", lambda R, I: F.nll_loss(R(3, 4, first=True), I(0, 3, 1))),
        P("kl_div", lambda R, I: F.kl_div(R(3, 4, first=True), R(3, 4).abs(), reduction="batchmean")),
        P("inner", lambda R, I: torch.inner(R(3, 4, first=True), R(2, 4))),
        P("multi_dot", lambda R, I: torch.linalg.multi_dot([R(3, 4, first=True), R(4, 2), R(2, 2)])),
        P(
            "binary_cross_entropy_with_logits",
            lambda R, I: F.binary_cross_entropy_with_logits(R(3, 4, first=True), R(3, 4).sigmoid()),
        ),
        P(
            "binary_cross_entropy",
            lambda R, I: F.binary_cross_entropy(R(3, 4, first=True).sigmoid(), R(3, 4).sigmoid()),
        ),
        P("prod", lambda R, I: torch.prod(R(3, 4, first=True))),
        P("cdist", lambda R, I: torch.cdist(R(3, 4, first=True), R(2, 4))),
        P("softmax", lambda R, I: torch.softmax(R(3, 4, first=True), -1)),
        P("log_softmax", lambda R, I: F.log_softmax(R(3, 4, first=True), -1)),
        P("layer_norm", lambda R, I: F.layer_norm(R(3, 4, first=True), (4,), R(4), R(4))),
        P("group_norm", lambda R, I: F.group_norm(R(2, 4, 3, first=True), 2)),
        P("exp", lambda R, I: torch.exp(R(3, 4, first=True))),
        P("pow", lambda R, I: R(3, 4, first=True) ** 2),
        P("sum", lambda R, I: R(3, 4, first=True).sum()),
        P("cumsum", lambda R, I: torch.cumsum(R(3, 4, first=True), 0)),
        P("norm", lambda R, I: torch.norm(R(3, 4, first=True))),
        P("normalize", lambda R, I: F.normalize(R(3, 4, first=True))),
        P("softmin", lambda R, I: F.softmin(R(3, 4, first=True), -1)),
        P("trace", lambda R, I: torch.trace(R(3, 3, first=True))),
        P("avg_pool3d", lambda R, I: F.avg_pool3d(R(1, 1, 4, 4, 4, first=True), 2)),
        P("max_pool3d", lambda R, I: F.max_pool3d(R(1, 1, 4, 4, 4, first=True), 2)),
        # --- promote
        P("cat", lambda R, I: torch.cat([R(2, 3, first=True), R(2, 3)])),
        P("stack", lambda R, I: torch.stack([R(2, 3, first=True), R(2, 3)])),
        P("index_copy", lambda R, I: R(3, 4, first=True).index_copy(0, I(0, 2), R(2, 4))),
        P("addcmul", lambda R, I: torch.addcmul(R(3, first=True), R(3), R(3))),
        P("atan2", lambda R, I: torch.atan2(R(3, first=True), R(3))),
        # --- untouched on both devices
        P("relu", lambda R, I: F.relu(R(3, 4, first=True))),
        P("gelu", lambda R, I: F.gelu(R(3, 4, first=True))),
        P("add", lambda R, I: R(3, 4, first=True) + R(3, 4)),
    )


PROBES: tuple[OpProbe, ...] = _probes()


@dataclass(frozen=True)
class Mismatch:
    """A probe/variant where the policy and torch.autocast disagree."""

    op: str
    variant: str
    reference: str  # dtype name or exception type name
    manual: str
    detail: str = ""


@contextlib.contextmanager
def fake_cuda_mode() -> Iterator[None]:
    """Fake tensors in which device="cuda" works without a GPU (dtype/shape only)."""
    from torch._subclasses.fake_tensor import FakeTensorMode  # private but stable since 2.0

    with FakeTensorMode():
        yield


@contextlib.contextmanager
def _autocast(device_type: str, dtype: torch.dtype, enabled: bool) -> Iterator[None]:
    """torch.autocast, or for CUDA without a GPU the same thread-local switches that
    torch.autocast flips (torch.autocast("cuda") refuses to enable without CUDA)."""
    if device_type == "cpu" or torch.cuda.is_available():
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            yield
        return
    prev = (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
    torch.set_autocast_enabled(device_type, enabled)
    torch.set_autocast_dtype(device_type, dtype)
    torch.autocast_increment_nesting()
    try:
        yield
    finally:
        if torch.autocast_decrement_nesting() == 0:
            torch.clear_autocast_cache()
        torch.set_autocast_enabled(device_type, prev[0])
        torch.set_autocast_dtype(device_type, prev[1])


def _run(probe: OpProbe, device: str, dts: tuple[torch.dtype, torch.dtype], seed: int, fake: bool):
    gen = torch.Generator().manual_seed(seed)

    def R(*shape, first=False):
        dt = dts[0] if first else dts[1]
        if fake:  # values do not exist; create directly on the fake device
            return torch.empty(shape, device=device, dtype=dt)
        t = torch.randn(*shape, generator=gen, dtype=torch.float32)
        return t.to(device=device, dtype=dt)

    def I(*values):  # noqa: E743 - I for "indices", as in the probes' tables
        return torch.tensor(values, dtype=torch.long, device=device)

    try:
        return probe.call(R, I)
    except Exception as e:  # the *type* of a failure is part of the comparison
        return e


def _bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and values, NaN equal to NaN (an op may legitimately produce NaN)."""
    return a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all())


def _same_values(a: torch.Tensor, b: torch.Tensor, composite: bool) -> bool:
    """Bit-equal, or for a composite equal within float32 rounding (rtol 1e-5, NaN equal NaN)."""
    if _bit_equal(a, b):
        return True
    return composite and a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6,
                                                               equal_nan=True)  # fmt: skip


def _describe(r) -> str:
    return type(r).__name__ if isinstance(r, Exception) else str(r.dtype).replace("torch.", "")


def compare_policy(
    policy: CastPolicy, probes: tuple[OpProbe, ...] = PROBES, variants: tuple[str, ...] = VARIANTS, seed: int = 0
) -> list[Mismatch]:
    """Run every probe in every variant under torch.autocast and under
    ManualAutocast(policy); return the disagreements (empty list = policy verified).

    On CPU (or CUDA with a GPU) outputs must also be bit-identical (composites: equal to float32
    rounding, see ``_compare_probe``); on CUDA without a GPU
    fake tensors are used and only dtypes/exception types are compared.
    """
    device = policy.device_type
    fake = device == "cuda" and not torch.cuda.is_available()
    low = policy.lower_dtype
    table = {
        "f32": (torch.float32, torch.float32),
        "low": (low, low),
        "mixed": (torch.float32, low),
        "f64": (torch.float64, torch.float64),
    }
    out: list[Mismatch] = []
    with fake_cuda_mode() if fake else contextlib.nullcontext():
        for probe in probes:
            out += _compare_probe(policy, probe, variants, table, seed, fake)
    return out


def policy_rows(policy: CastPolicy, probes: tuple[OpProbe, ...] = PROBES) -> list[dict[str, str]]:
    """One row per probe op: its name, the policy's category for it and the dtype a float32 input
    of the op runs in under the policy ("(unchanged)" where the policy leaves it alone)."""
    one = (torch.ones(1, device=policy.device_type),)
    name = lambda dt: str(dt or "(unchanged)").replace("torch.", "")  # noqa: E731 - one line
    return [
        {
            "op": p.name,
            "category": policy.category(p.name),
            "float32 input runs in": name(policy.compute_dtype(p.name, one)),
        }
        for p in probes
    ]


def _compare_probe(policy, probe, variants, table, seed, fake) -> list[Mismatch]:
    device, low = policy.device_type, policy.lower_dtype
    # a composite reaches its float32 result by another kernel route under autocast (CUDA's
    # trace is diagonal().sum() with sum(dtype=float32) on the half input; ours casts first):
    # same math, possibly a different summation order, so its values are compared to rounding
    composite = policy.resolve(probe.name) in policy.composites
    out: list[Mismatch] = []
    if fake and policy.resolve(probe.name) in policy.kernel_composites:
        return out  # decided inside the CUDA kernel: fake tensors cannot show it (see CastPolicy)
    ran = False
    for v in variants:
        with _autocast(device, low, True):
            ref = _run(probe, device, table[v], seed, fake)
        with ManualAutocast(policy):
            man = _run(probe, device, table[v], seed, fake)
        a, b = _describe(ref), _describe(man)
        if isinstance(ref, torch.Tensor):
            ran = True
            if ref.device.type != device:
                out.append(Mismatch(probe.name, v, a, b, f"reference ran on {ref.device.type}"))
        if a != b:
            out.append(Mismatch(probe.name, v, a, b))
        elif not fake and isinstance(ref, torch.Tensor) and not _same_values(ref, man, composite):
            out.append(Mismatch(probe.name, v, a, b, "same dtype, different values"))
    # a probe that fails everywhere would compare errors with errors (banned ops are
    # meant to fail)
    if not ran and policy.category(probe.name) != "banned":
        out.append(Mismatch(probe.name, "all", "error", "error", "the reference never ran"))
    return out
