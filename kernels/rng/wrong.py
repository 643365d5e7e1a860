"""Wrong seeding of an input pipeline: the mutants of m6.seeded_runs, each a plausible mistake.

They mirror :func:`harness.data.seeded.seed_worker` and :class:`harness.data.seeded.ResumableSampler`;
the task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

from typing import Any

from harness.data.seeded import ResumableSampler


def unseeded_worker(worker_id: int) -> None:
    """WRONG ``worker_init_fn``: forgets the data set's generator, so every DataLoader worker
    replays the NumPy stream it inherited from the parent."""


class RestartingSampler(ResumableSampler):
    """WRONG: ``load_state_dict`` keeps the epoch and seed but drops the position, so a resumed
    run starts the epoch over and sees its first batches twice."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
