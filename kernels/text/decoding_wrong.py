"""Wrong beam searches, the mutants of ``rnn.beam_search`` (beside :mod:`kernels.text.decoding`).

Each wraps :func:`kernels.text.decoding.beam_search` and breaks one thing the task's exhaustive
check (an unpruned beam must equal the brute-force best sequence) has to catch.
"""

from __future__ import annotations

from kernels.text import decoding


def ignores_alpha(*args, **kwargs):
    """Ranks by log P alone: the length penalty's alpha is dropped."""
    return decoding.beam_search(*args, **{**kwargs, "alpha": 0.0})


def penalty_without_the_five(*args, **kwargs):
    """Ranks by log P / |Y|^alpha instead of Wu et al.'s ((5 + |Y|) / 6)^alpha."""
    original = decoding.length_penalty
    decoding.length_penalty = lambda length, alpha: length**alpha
    try:
        return decoding.beam_search(*args, **kwargs)
    finally:
        decoding.length_penalty = original


def no_reorder_after_pruning(*args, **kwargs):
    """Copies the state to B*K rows once, then never follows the surviving hypotheses."""
    reorder, calls = kwargs.get("reorder", decoding.reorder_state), []

    def first_only(state, index):
        calls.append(1)
        return reorder(state, index) if len(calls) == 1 else state

    return decoding.beam_search(*args, **{**kwargs, "reorder": first_only})
