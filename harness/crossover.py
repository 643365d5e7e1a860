"""Where one implementation overtakes another along a size sweep."""

from __future__ import annotations

import math
from collections.abc import Sequence


def crossover(sizes: Sequence[float], t_base: Sequence[float], t_new: Sequence[float]) -> float | None:
    """Smallest size from which ``new`` stays faster than ``base``, interpolated in log-log.

    Args:
        sizes: increasing sizes of the sweep; t_base, t_new: times at each size (any unit).
    Returns ``sizes[0]`` when ``new`` is faster at every size, None when it is not faster
    at the largest size; else the size where the time ratio crosses 1 between the two sweep
    points around the last crossing (log ratio linear in log size).
    """
    ratio = [g / c for g, c in zip(t_new, t_base)]  # < 1: new faster
    if ratio[-1] >= 1:
        return None
    i = len(ratio) - 1
    while i > 0 and ratio[i - 1] < 1:
        i -= 1
    if i == 0:
        return sizes[0]
    # log r is linear in log size between the two points around the crossing r = 1
    l0, l1 = math.log(ratio[i - 1]), math.log(ratio[i])
    frac = l0 / (l0 - l1) if l0 != l1 else 0.0
    return math.exp(math.log(sizes[i - 1]) + frac * (math.log(sizes[i]) - math.log(sizes[i - 1])))
