"""Correctness checks: one tolerance table, error measurement, and guards.

Every comparison goes through :func:`compare`, which wraps
``torch.testing.assert_close`` with the tolerance of the dtype from
:data:`TOLERANCES` and records the max absolute and max relative error whether it
passes or not, so the report can show how close an implementation came.

The guards catch outputs that pass by accident:

* :func:`guard_not_constant`: an all-zero or constant output fails when the reference
  is not constant (an unwritten buffer compares equal to a zero reference).
* :func:`guard_not_mutated`: inputs must be unchanged after the call.
* :func:`guard_no_alias`: the output must not share memory with an input unless the
  task says so (views are a task's explicit choice, e.g. 1.07 reshape_flatten).

:func:`expect_seeded` checks that a random op draws only from the generator it is given.

A check that cannot fail is a defect: tests/test_checks.py feeds each guard a wrong
implementation and sees it fail.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten


class CheckFailed(AssertionError):
    """A correctness check failed. The message says what, where and by how much."""


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance for ``torch.testing.assert_close``.

    Passes when ``|actual - expected| <= atol + rtol * |expected|`` elementwise.
    """

    rtol: float
    atol: float


#: dtype -> tolerance. The float values are torch.testing.assert_close's defaults
#: (PyTorch docs, torch.testing), loosened for bf16/fp16 because the references here
#: often accumulate in a different order than the implementations: a sum of K
#: products in bf16 carries ~K * 2**-8 relative error in the worst case.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(rtol=1e-7, atol=1e-7),
    torch.float32: Tolerance(rtol=1.3e-6, atol=1e-5),
    torch.bfloat16: Tolerance(rtol=1.6e-2, atol=1e-2),
    torch.float16: Tolerance(rtol=1e-3, atol=1e-3),
    torch.complex64: Tolerance(rtol=1.3e-6, atol=1e-5),
    torch.complex128: Tolerance(rtol=1e-7, atol=1e-7),
}
_EXACT = Tolerance(rtol=0.0, atol=0.0)


def tolerance_for(dtype: torch.dtype) -> Tolerance:
    """Tolerance for ``dtype``; integer and bool dtypes compare exactly."""
    if dtype.is_floating_point or dtype.is_complex:
        try:
            return TOLERANCES[dtype]
        except KeyError:
            raise ValueError(f"no tolerance for {dtype}; add it to harness.checks.TOLERANCES") from None
    return _EXACT


@dataclasses.dataclass
class CheckResult:
    """What one comparison measured; stored in the run record."""

    name: str
    passed: bool
    max_abs_err: float
    max_rel_err: float
    rtol: float
    atol: float
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("max_abs_err", "max_rel_err"):
            v = d[k]
            d[k] = None if (v is None or math.isnan(v) or math.isinf(v)) else float(f"{v:.4g}")
        if not d["message"]:
            del d["message"]
        return d


def _leaves(x: Any) -> list[Any]:
    leaves, _ = tree_flatten(x)
    return leaves


def errors(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, float]:
    """Max absolute and max relative error, computed in float64.

    The relative error divides by ``|expected|`` where it is nonzero; positions where
    the reference is exactly zero contribute only to the absolute error.
    """
    if actual.shape != expected.shape or actual.numel() == 0:
        return (0.0, 0.0) if actual.numel() == 0 and actual.shape == expected.shape else (math.nan, math.nan)
    a = (
        actual.detach().to("cpu", torch.float64)
        if not actual.is_complex()
        else actual.detach().cpu().to(torch.complex128)
    )
    e = (
        expected.detach().to("cpu", torch.float64)
        if not expected.is_complex()
        else expected.detach().cpu().to(torch.complex128)
    )
    diff = (a - e).abs()
    finite = torch.isfinite(diff)
    both_same_nonfinite = ~torch.isfinite(a) & (a == e)
    diff = torch.where(both_same_nonfinite, torch.zeros_like(diff), diff)
    if not bool((finite | both_same_nonfinite).all()):
        return math.inf, math.inf
    max_abs = float(diff.max())
    denom = e.abs()
    nz = denom > 0
    max_rel = float((diff[nz] / denom[nz]).max()) if bool(nz.any()) else 0.0
    return max_abs, max_rel


def compare(
    actual: Any,
    expected: Any,
    *,
    name: str = "output",
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
) -> CheckResult:
    """Compare ``actual`` against ``expected`` (tensors or nested tuples/lists/dicts of them).

    Tolerances default to :func:`tolerance_for` the expected dtype. Returns a
    :class:`CheckResult`; never raises for a mismatch (the caller decides), but raises
    :class:`CheckFailed` when the structures differ (different number of outputs).
    """
    a_leaves, e_leaves = _leaves(actual), _leaves(expected)
    if len(a_leaves) != len(e_leaves):
        raise CheckFailed(f"{name}: implementation returned {len(a_leaves)} tensors, reference {len(e_leaves)}")
    max_abs = max_rel = 0.0
    first_msg = ""
    tol_used = None
    passed = True
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if not isinstance(e, torch.Tensor):
            e = torch.as_tensor(e)
        if not isinstance(a, torch.Tensor):
            a = torch.as_tensor(a)
        tol = tolerance_for(e.dtype)
        r = tol.rtol if rtol is None else rtol
        t = tol.atol if atol is None else atol
        tol_used = tol_used or (r, t)
        ab, rel = errors(a, e)
        max_abs, max_rel = max(max_abs, ab), max(max_rel, rel)
        try:
            torch.testing.assert_close(
                a.detach().cpu(), e.detach().cpu(), rtol=r, atol=t, equal_nan=equal_nan, check_device=False
            )
        except AssertionError as err:
            passed = False
            if not first_msg:
                where = f"{name}[{i}]" if len(e_leaves) > 1 else name
                first_msg = f"{where}: " + " ".join(str(err).split())[:400]
    r, t = tol_used or (0.0, 0.0)
    return CheckResult(
        name=name, passed=passed, max_abs_err=max_abs, max_rel_err=max_rel, rtol=r, atol=t, message=first_msg
    )


def _is_constant(t: torch.Tensor) -> bool:
    if t.numel() <= 1:
        return False
    flat = t.detach().reshape(-1)
    return bool((flat == flat[0]).all())


def guard_not_constant(actual: Any, expected: Any, *, name: str = "output") -> None:
    """Fail when an output tensor is constant (e.g. all zeros) but its reference is not.

    Raises:
        CheckFailed: naming the output and the constant value found.
    """
    for i, (a, e) in enumerate(zip(_leaves(actual), _leaves(expected))):
        if isinstance(a, torch.Tensor) and isinstance(e, torch.Tensor) and _is_constant(a) and not _is_constant(e):
            v = a.reshape(-1)[0].item()
            raise CheckFailed(
                f"{name}[{i}] is constant ({v}) where the reference varies: unwritten or broadcast output?"
            )


def snapshot(inputs: Any) -> list[Any]:
    """Clones of every tensor in ``inputs``, for :func:`guard_not_mutated`."""
    return [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in _leaves(inputs)]


def guard_not_mutated(inputs: Any, before: list[Any], *, name: str = "implementation") -> None:
    """Fail when any tensor in ``inputs`` differs from its snapshot ``before``.

    NaNs in the same places count as unchanged.

    Raises:
        CheckFailed: naming the index of the mutated input.
    """
    for i, (now, then) in enumerate(zip(_leaves(inputs), before)):
        if isinstance(now, torch.Tensor):
            if now.shape != then.shape or not torch.equal(
                torch.nan_to_num(now.detach(), nan=0.0) if now.is_floating_point() else now.detach(),
                torch.nan_to_num(then, nan=0.0) if then.is_floating_point() else then,
            ):
                raise CheckFailed(f"{name} mutated input {i} (shape {tuple(now.shape)}); work on a copy")


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    if t.numel() == 0:
        return (0, 0)
    start = t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size()
    extent = sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride())) + 1
    return int(start), int(start + extent * t.element_size())


def guard_no_alias(output: Any, inputs: Any, *, name: str = "implementation") -> None:
    """Fail when an output tensor shares memory with an input tensor.

    Raises:
        CheckFailed: naming which output aliases which input.
    """
    ins = [(j, x) for j, x in enumerate(_leaves(inputs)) if isinstance(x, torch.Tensor) and x.numel() > 0]
    for i, o in enumerate(_leaves(output)):
        if not isinstance(o, torch.Tensor) or o.numel() == 0:
            continue
        o_lo, o_hi = _storage_span(o)
        for j, x in ins:
            if x.device != o.device:
                continue
            x_lo, x_hi = _storage_span(x)
            if o_lo < x_hi and x_lo < o_hi:
                raise CheckFailed(f"{name}: output {i} shares memory with input {j}; return a new tensor")


def expect_seeded(ctx: Any, draw: Callable[[torch.Generator], Any], what: str, seeds: tuple[int, int] = (7, 8)) -> Any:
    """Expect ``draw(generator)`` (a random op) to depend on its generator only: two draws
    from ``ctx.generator(seeds[0])`` equal in every tensor (check ``seeded: same seed``), one
    from ``ctx.generator(seeds[1])`` different in some tensor (``seeded: other seed``). ``what``
    names the results in the failure messages. Returns the first draw."""
    first, again, other = (draw(ctx.generator(s)) for s in (seeds[0], seeds[0], seeds[1]))

    def same(a: Any, b: Any) -> bool:
        return all(torch.equal(p, q) for p, q in zip(_leaves(a), _leaves(b), strict=True))

    ctx.expect(same(first, again), f"same seed gave different {what}", name="seeded: same seed")
    ctx.expect(not same(first, other), f"two seeds gave identical {what}", name="seeded: other seed")
    return first
