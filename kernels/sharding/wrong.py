"""Wrong sharded optimizers: the mutants of m5.zero_sharding (each one a plausible mistake about
ZeRO stage 1, see ``torch.distributed.optim.ZeroRedundancyOptimizer`` for the right one).

Classes, module level: spawned ranks import them by reference (the task passes the class).
"""

from __future__ import annotations

from torch.distributed.optim import ZeroRedundancyOptimizer


class ZeroSkipsBroadcast(ZeroRedundancyOptimizer):
    """WRONG: each rank updates its own parameters and never broadcasts them to the others."""

    def _sync_params(self) -> None:
        pass


class ZeroAllOnRankZero(ZeroRedundancyOptimizer):
    """WRONG: the partition puts every parameter (and so all of Adam's state) on rank 0."""

    def _get_min_index(self, values, disallowed_indices=None) -> int:
        return 0
