"""kernels.pipelining helpers of m5.pipeline_parallel's bench: the measured bubble and the table row."""

from __future__ import annotations

import pytest

from kernels.pipelining.pipeline import measured_bubble, table_row


def test_measured_bubble_is_the_median_idle_share_over_stages_and_steps():
    # two stages, two steps of 10 ms and 20 ms: stage 0 busy 5 and 10 (idle 0.5, 0.5), stage 1 busy 10 and 15
    assert measured_bubble([[5.0, 10.0], [10.0, 15.0]], [10.0, 20.0]) == pytest.approx(0.375)
    assert measured_bubble([[10.0], [10.0]], [10.0]) == 0.0  # both stages busy the whole step


def test_table_row_rounds_for_reading():
    row = table_row("gpipe", 4, 123.456, 0.33333, 0.2)
    assert row == {"schedule": "gpipe", "M": 4, "samples_per_s": 123.5, "bubble_measured": 0.333, "bubble_formula": 0.2}
