"""Wrong prefetchers and data sets: the mutants of m6.prefetch_compare and m6.loader_utilization.

Each subclasses the right one (:class:`harness.loader.PrefetchLoader`,
:class:`harness.data.slow.ShardedStream`) and breaks one promise (every batch or sample once,
in order); the task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

from harness.data.slow import ShardedStream
from harness.loader import PrefetchLoader


class DropsLast(PrefetchLoader):
    """WRONG: hands out each batch one step late and never the last (an off-by-one at the end
    of the queue)."""

    def __iter__(self):
        it = super().__iter__()
        prev = next(it, None)
        for b in it:
            yield prev
            prev = b


class Reorders(PrefetchLoader):
    """WRONG: swaps neighbouring batches, as a pool of racing producer threads can."""

    def __iter__(self):
        held = None
        for b in super().__iter__():
            if held is None:
                held = b
            else:
                yield b
                yield held
                held = None
        if held is not None:
            yield held


class UnshardedStream(ShardedStream):
    """WRONG: ignores the worker it runs in: with W workers every index arrives W times."""

    def my_shards(self) -> range:
        return range(self.shards)
