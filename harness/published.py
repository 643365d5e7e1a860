"""The "published vs ours" table of a reproduction task: each published figure beside this run.

A reproduction (BERT, GPT-2, ViT, GCN...) cannot match a paper's data, hardware or budget
on the machines that run the drills; the table says so row by row, so the reader compares
what this run measured with the figure and sees how the setups differ. :func:`record_mfu`
sets a training run's model FLOP utilisation against this machine's measured peak beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from harness.peak import peak_key

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


def record_mfu(ctx: Context, name: str, tokens_per_s: float, flops_per_token: float, dtype: torch.dtype) -> None:
    """Record metric ``name``: MFU in percent, tokens/s x FLOPs per token over the measured matmul
    peak of ``dtype`` (:func:`harness.peak.peak_key`).

    Nothing is recorded without a measured peak for ``dtype``; a note instead of the metric when
    the peak was measured under load or the MFU reads over 100 %: a peak taken on a busy machine
    is a lower bound, so the MFU against it reads high.
    """
    peak = ctx.peak.get(peak_key(dtype) or "", 0.0) * 1e9  # GFLOP/s -> FLOP/s
    if peak <= 0:
        return
    pct = 100 * tokens_per_s * flops_per_token / peak
    if ctx.peak.get("loaded") or pct > 100:
        ctx.note(f"MFU {pct:.0f} % not recorded: the matmul peak was measured under load, so it reads high")
    else:
        ctx.metric(name, pct)
