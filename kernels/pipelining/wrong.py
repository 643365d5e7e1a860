"""Wrong bubble formula: a mutant of m5.pipeline_parallel (see
``kernels.pipelining.pipeline.gpipe_bubble`` for the right one).

Module level: the task swaps it in as a staticmethod and the mutant runner imports it by reference.
"""

from __future__ import annotations


def bubble_over_m(stages: int, micro_batches: int) -> float:
    """WRONG: (K-1)/M is the bubble relative to the ideal time (Narayanan et al. 2021, "Efficient
    Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC, section 2.2.1),
    not the idle share of a step; K = ``stages``, M = ``micro_batches``."""
    return (stages - 1) / micro_batches
