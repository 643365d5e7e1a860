"""The "published vs ours" table (one row per anchor, the device appended) and MFU against a quiet peak only."""

import pytest
import torch

from harness.context import Context, TaskRecord
from harness.published import DIFFERENCE, TABLE, hardware, published_vs_ours, record_mfu
from harness.registry import REGISTRY


def test_one_row_per_anchor_with_the_device():
    ctx = Context(REGISTRY.get("research.bert_mlm"), mode="bench", dtype=torch.float32, record=TaskRecord(id="t"))
    anchors = [("A", "1.0", "their data"), ("B", "2.0", "their budget")]
    published_vs_ours(ctx, anchors, "0.5", "our data; 10 steps")
    (table,) = ctx.record.tables
    assert table["name"] == TABLE and hardware(ctx) == "CPU"
    assert [r["result"] for r in table["rows"]] == ["A", "B"] and {r["ours"] for r in table["rows"]} == {"0.5"}
    assert table["rows"][1][DIFFERENCE] == "published: their budget; ours: our data; 10 steps, CPU"


def test_mfu_recorded_against_a_quiet_peak_only():
    def ctx_with(peak):
        return Context(REGISTRY.get("research.gpt2_repro"), mode="bench", peak=peak, record=TaskRecord(id="t"))

    quiet = ctx_with({"matmul_gflops": 100.0})  # 1e11 FLOP/s
    record_mfu(quiet, "mfu_pct", 1000.0, 1e7, torch.float32)  # 1e10 FLOP/s: 10 %
    assert quiet.record.metrics["mfu_pct"] == pytest.approx(10.0)
    for peak in ({"matmul_gflops": 100.0, "loaded": True}, {"matmul_gflops": 1.0}, {}):  # loaded, over 100 %, none
        ctx = ctx_with(peak)
        record_mfu(ctx, "mfu_pct", 1000.0, 1e7, torch.float32)
        assert "mfu_pct" not in ctx.record.metrics
