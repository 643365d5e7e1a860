"""Exhaustive comparison of a broadcasting shape rule with torch's own.

:func:`enumerate_shapes` lists every shape of rank 0..max_rank with sizes drawn from a small
set; :func:`compare_rule` runs a hand-written rule and torch's (``torch.broadcast_tensors``,
i.e. ATen's ``infer_size``, the rule every op uses) on every ordered pair and sorts the pairs.
With sizes {1, 3, 4} and rank <= 4 that is 121 shapes and 14,641 pairs (6,821 broadcastable,
7,820 not): every broadcast pattern, each dim equal, 1 vs n, n vs 1, missing on either side.
:func:`random_shapes` draws random sets of 1-4 shapes instead (fundamentals.broadcasting's check),
:func:`shape_or_error` runs a rule on one set.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Callable, Sequence

import torch

Shape = tuple[int, ...]


def enumerate_shapes(sizes: Sequence[int] = (1, 3, 4), max_rank: int = 4) -> list[Shape]:
    """Every shape of rank 0..max_rank with each size drawn from ``sizes``."""
    return [s for r in range(max_rank + 1) for s in itertools.product(sizes, repeat=r)]


@dataclasses.dataclass
class RuleComparison:
    """What :func:`compare_rule` found; pairs are (shape_a, shape_b)."""

    wrong: list[str]
    """pairs where the rule's result (shape or error) differs from torch's, as sentences"""
    unclear: list[str]
    """pairs the rule refused with a ValueError whose message does not name the dimension"""
    ok_pairs: list[tuple[Shape, Shape]]
    """pairs torch broadcasts"""
    bad_pairs: list[tuple[Shape, Shape]]
    """pairs torch refuses"""


def compare_rule(rule: Callable[..., Sequence[int]], shapes: Sequence[Shape]) -> RuleComparison:
    """Run ``rule(shape_a, shape_b)`` (a shape, or ValueError when incompatible) on every ordered pair.

    A rule raising anything but ValueError propagates: that is a crash, not a verdict.
    """
    empty = {sh: torch.empty(sh) for sh in shapes}
    out = RuleComparison([], [], [], [])
    for sa, sb in itertools.product(shapes, shapes):
        try:  # torch's own rule (at::infer_size), in C++
            ref: Shape | None = tuple(torch.broadcast_tensors(empty[sa], empty[sb])[0].shape)
        except RuntimeError:
            ref = None
        try:
            own: Shape | None = tuple(rule(sa, sb))
        except ValueError as e:
            own = None
            if "dimension" not in str(e):
                out.unclear.append(f"{sa}, {sb}: {e}")
        if own != ref:
            said = "an error" if own is None else own
            out.wrong.append(f"{sa} and {sb}: rule gives {said}, torch {'an error' if ref is None else ref}")
        (out.ok_pairs if ref is not None else out.bad_pairs).append((sa, sb))
    return out


def random_shapes(rng: random.Random) -> list[tuple[int, ...]]:
    """1-4 random shapes for a broadcasting rule: a common target (rank 0-5, sizes 2, 3, 5 and now
    and then 0) with leading dims dropped and some sizes set to 1 (broadcastable); in 40% of draws
    the full target joins them and one size of another shape becomes 4 or 7, which the target
    cannot broadcast with (so about a fifth of draws must be rejected)."""
    target = [
        rng.choice([0, 2, 3, 5]) if rng.random() < 0.1 else rng.choice([2, 3, 5]) for _ in range(rng.randint(0, 5))
    ]
    shapes = []
    for _ in range(rng.randint(1, 3)):
        s = [1 if rng.random() < 0.4 else n for n in target[rng.randint(0, len(target)) :]]
        shapes.append(s)
    if target and rng.random() < 0.4:
        s = rng.choice(shapes)
        if s:
            s[rng.randrange(len(s))] = rng.choice([4, 7])
        shapes.append(list(target))
    return [tuple(s) for s in shapes]


def shape_or_error(rule: Callable[..., Sequence[int]], shapes: Sequence[Shape], error: type[Exception]):
    """(``tuple(rule(*shapes))``, None), or (None, the exception) when the rule raises ``error``."""
    try:
        return tuple(rule(*shapes)), None
    except error as e:
        return None, e
