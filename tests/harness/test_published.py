"""The "published vs ours" table: one row per anchor, this run's figure and setup with the device appended."""

import torch

from harness.context import Context, TaskRecord
from harness.published import DIFFERENCE, TABLE, hardware, published_vs_ours
from harness.registry import REGISTRY


def test_one_row_per_anchor_with_the_device():
    ctx = Context(REGISTRY.get("research.bert_mlm"), mode="bench", dtype=torch.float32, record=TaskRecord(id="t"))
    anchors = [("A", "1.0", "their data"), ("B", "2.0", "their budget")]
    published_vs_ours(ctx, anchors, "0.5", "our data; 10 steps")
    (table,) = ctx.record.tables
    assert table["name"] == TABLE and hardware(ctx) == "CPU"
    assert [r["result"] for r in table["rows"]] == ["A", "B"] and {r["ours"] for r in table["rows"]} == {"0.5"}
    assert table["rows"][1][DIFFERENCE] == "published: their budget; ours: our data; 10 steps, CPU"
