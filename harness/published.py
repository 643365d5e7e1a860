"""The "published vs ours" table of a reproduction task: each published figure beside this run.

A reproduction (BERT, GPT-2, ViT, GCN...) cannot match a paper's data, hardware or budget
on the machines that run the drills; the table says so row by row, so the reader compares
what this run measured with the figure and sees how the setups differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from harness.context import Context

#: the table's name in the run record and the report
TABLE = "published vs ours"
DIFFERENCE = "difference (data, hardware, budget)"


def hardware(ctx: Context) -> str:
    """The run's device as a reader names it: the CUDA device's name, else ``"CPU"``."""
    return torch.cuda.get_device_name(ctx.device) if ctx.is_cuda else "CPU"


def published_vs_ours(ctx: Context, anchors: Sequence[tuple[str, str, str]], ours: str, setup: str) -> None:
    """Record :data:`TABLE`: one row per anchor beside this run's result.

    Args:
        anchors: (result, published figure, the published setup) per row.
        ours: this run's figure, the same on every row.
        setup: this run's data and budget; the device (:func:`hardware`) is appended.
    """
    diff = f"{setup}, {hardware(ctx)}"
    rows = [
        {"result": a, "published": p, "ours": ours, DIFFERENCE: f"published: {d}; ours: {diff}"} for a, p, d in anchors
    ]
    ctx.table(TABLE, rows)
