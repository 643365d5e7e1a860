"""5.10 beam_search: beam 1 = greedy, exact on unpruned lattices, length penalty; planted bugs are caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.text import decoding

Task = REGISTRY.get("rnn.beam_search")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["unpruned beam = brute-force best sequence"]["n"] == 27
    assert rec.checks["beam width 1 = greedy: tokens"]["n"] == 18


def _ignores_alpha(*args, **kwargs):
    return decoding.beam_search(*args, **{**kwargs, "alpha": 0.0})


def _penalty_without_the_five(*args, **kwargs):
    """Ranks by log P / |Y|^alpha instead of Wu et al.'s ((5 + |Y|) / 6)^alpha."""
    original = decoding.length_penalty
    decoding.length_penalty = lambda length, alpha: length**alpha
    try:
        return decoding.beam_search(*args, **kwargs)
    finally:
        decoding.length_penalty = original


def _no_reorder_after_pruning(*args, **kwargs):
    """Copies the state to B*K rows once, then never follows the surviving hypotheses."""
    reorder = kwargs.get("reorder", decoding.reorder_state)
    calls = []

    def first_only(state, index):
        calls.append(1)
        return reorder(state, index) if len(calls) == 1 else state

    return decoding.beam_search(*args, **{**kwargs, "reorder": first_only})


def _planted(fn):
    return type("Planted", (Task,), {"beam_search": staticmethod(fn), "__doc__": Task.__doc__})


def test_ignoring_alpha_is_caught():
    expect_check_fails(_planted(_ignores_alpha), match="unpruned beam")


def test_wrong_length_penalty_is_caught():
    expect_check_fails(_planted(_penalty_without_the_five), match="unpruned beam")


def test_state_not_reordered_is_caught():
    expect_check_fails(_planted(_no_reorder_after_pruning), match="unpruned beam")
