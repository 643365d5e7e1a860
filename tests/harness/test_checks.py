"""The checks can fail: every guard and the comparison catch a planted wrong implementation."""

import math

import pytest
import torch

from harness.checks import (
    CheckFailed,
    compare,
    errors,
    expect_seeded,
    guard_no_alias,
    guard_not_constant,
    guard_not_mutated,
    snapshot,
    tolerance_for,
)


def test_tolerance_table_covers_float_dtypes_and_ints_are_exact():
    for dt in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
        tol = tolerance_for(dt)
        assert tol.rtol > 0 and tol.atol > 0
    assert tolerance_for(torch.int64).rtol == 0 and tolerance_for(torch.bool).atol == 0
    # looser for lower precision
    assert tolerance_for(torch.bfloat16).rtol > tolerance_for(torch.float32).rtol > tolerance_for(torch.float64).rtol


def test_compare_records_errors_and_fails_beyond_tolerance():
    e = torch.tensor([1.0, 2.0, 4.0])
    ok = compare(e + 1e-7, e)
    assert ok.passed and 0 < ok.max_abs_err < 1e-6
    bad = compare(e * 1.01, e, name="scaled")
    assert not bad.passed
    assert math.isclose(bad.max_abs_err, 0.04, rel_tol=1e-3)
    assert math.isclose(bad.max_rel_err, 0.01, rel_tol=1e-3)
    assert "scaled" in bad.message


def test_compare_nested_outputs_and_count_mismatch():
    a = (torch.ones(2), {"x": torch.zeros(3)})
    assert compare(a, (torch.ones(2), {"x": torch.zeros(3)})).passed
    assert not compare((torch.ones(2), {"x": torch.ones(3)}), a).passed
    with pytest.raises(CheckFailed, match="returned 1 tensors, reference 2"):
        compare((torch.ones(2),), a)


def test_nan_fails_unless_equal_nan():
    e = torch.tensor([1.0, float("nan")])
    assert not compare(torch.tensor([1.0, 1.0]), e).passed
    assert compare(e.clone(), e, equal_nan=True).passed
    assert errors(torch.tensor([1.0, float("inf")]), torch.tensor([1.0, 2.0]))[0] == math.inf


def test_shape_mismatch_fails():
    assert not compare(torch.ones(2, 3), torch.ones(3, 2)).passed


def test_constant_guard_catches_all_zero_output():
    ref = torch.randn(4, 5)
    with pytest.raises(CheckFailed, match="constant"):
        guard_not_constant(torch.zeros(4, 5), ref)
    guard_not_constant(ref.clone(), ref)  # a varying output passes
    guard_not_constant(torch.zeros(3), torch.zeros(3))  # constant reference: a constant output is right


def test_mutation_guard_catches_in_place_implementation():
    x = torch.randn(6)
    before = snapshot((x,))

    def relu_in_place(t):
        return t.clamp_(min=0)

    relu_in_place(x)
    with pytest.raises(CheckFailed, match="mutated input 0"):
        guard_not_mutated((x,), before)
    y = torch.tensor([1.0, float("nan")])
    guard_not_mutated((y,), snapshot((y,)))  # NaN in the same place is unchanged


def test_alias_guard_catches_returned_view():
    x = torch.randn(4, 4)
    with pytest.raises(CheckFailed, match="shares memory with input 0"):
        guard_no_alias(x.t(), (x,))
    with pytest.raises(CheckFailed):
        guard_no_alias(x[1:3], (x,))
    guard_no_alias(x.clone(), (x,))
    # disjoint halves of one storage do not alias
    base = torch.randn(10)
    guard_no_alias(base[5:], (base[:5],))


class _Ctx:
    """What expect_seeded uses of a Context: seeded generators and expect."""

    rng_seed = 0

    def generator(self, offset=0):
        return torch.Generator().manual_seed(self.rng_seed + offset)

    def expect(self, condition, message, *, name=None):
        if not condition:
            raise CheckFailed(f"{name}: {message}")


def test_expect_seeded_passes_a_seeded_op_and_catches_both_faults():
    x = torch.arange(50.0)  # 50! orders: two unseeded shuffles never agree by chance
    first = expect_seeded(_Ctx(), lambda g: (x[torch.randperm(50, generator=g)], x), "shuffles")
    assert torch.equal(first[0].sort().values, x)
    with pytest.raises(CheckFailed, match="same seed gave different shuffles"):
        expect_seeded(_Ctx(), lambda g: x[torch.randperm(50)], "shuffles")  # the global RNG
    with pytest.raises(CheckFailed, match="two seeds gave identical shuffles"):
        expect_seeded(_Ctx(), lambda g: x.clone(), "shuffles")  # ignores the generator
