"""3.10 tensorboard_logging: scalars read back equal those written; planted writer bugs are caught."""

import pytest

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

pytest.importorskip("tensorboard", reason="needs tensorboard (pip install 'torchdrills[data]')")
Task = REGISTRY.get("nn_basics.tensorboard_logging")


def test_check_passes_and_curves_come_from_the_file():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["name"] for c in rec.curves} == {"train/loss", "train/lr", "test/accuracy"}


class UnflushedBatches(Task):
    """Batches scalars 16 at a time and closes without flushing the last partial batch.

    (A real SummaryWriter left open loses the events still in its queue only when its
    writer thread has not caught up: a race, so the deterministic stand-in is this.)
    """

    def open_writer(self, log_dir):
        w = super().open_writer(log_dir)
        real, w.pending = w.add_scalar, []

        def add_scalar(tag, value, step):
            w.pending.append((tag, value, step))
            if len(w.pending) == 16:
                for args in w.pending:
                    real(*args)
                w.pending.clear()

        w.add_scalar = add_scalar
        return w


class DropsLastScalar(Task):
    """A writer that swallows the final add_scalar (e.g. an off-by-one flush)."""

    def open_writer(self, log_dir):
        w = super().open_writer(log_dir)
        real = w.add_scalar
        pending = []

        def add_scalar(tag, value, step):
            if pending:
                real(*pending.pop())
            pending.append((tag, value, step))

        w.add_scalar = add_scalar
        return w


class WritesFloat16(Task):
    """Rounds values more coarsely than float32 before writing."""

    def open_writer(self, log_dir):
        import numpy as np

        w = super().open_writer(log_dir)
        real = w.add_scalar
        w.add_scalar = lambda tag, value, step: real(tag, float(np.float16(value)), step)
        return w


def test_unflushed_last_batch_is_caught():
    expect_check_fails(UnflushedBatches, match="scalars read back")


def test_dropped_last_scalar_is_caught():
    expect_check_fails(DropsLastScalar, match="scalars read back")


def test_lossy_values_are_caught():
    expect_check_fails(WritesFloat16, match="same values")
