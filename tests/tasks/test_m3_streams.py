"""m3.streams: chunked (streamed) results equal the unchunked computation; planted bugs are caught."""

import sys

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m3.streams")
streams_mod = sys.modules[Task.__module__]  # the task file: run_pipeline, compute


def test_check_passes():
    rec = run_check(Task)
    assert set(rec.checks) == {"serial == unchunked", "streamed == unchunked"}
    assert all(c["passed"] for c in rec.checks.values())
    if not torch.cuda.is_available():
        assert rec.skipped_parts and rec.skipped_parts[0]["reason"] == "needs cuda"


def test_streamed_piece_never_copied_back_is_caught():
    class DropsLastPiece(Task):
        def run(self, variant, config, job, streams):
            x, w, out = job
            if variant != "streamed":
                return super().run(variant, config, job, streams)
            n = torch.tensor_split(torch.arange(x.shape[0]), config.chunks)[-1].numel()
            # the last piece is left out: its rows keep the NaN poison
            streams_mod.run_pipeline(x[:-n], w, out[:-n], chunks=config.chunks - 1, iters=config.iters, streams=streams)

    expect_check_fails(DropsLastPiece, match="streamed == unchunked")


def test_pieces_written_to_the_wrong_place_are_caught():
    class Shifted(Task):
        def run(self, variant, config, job, streams):
            x, w, out = job
            if variant != "streamed":
                return super().run(variant, config, job, streams)
            pieces_in = torch.tensor_split(x, config.chunks)
            pieces_out = torch.tensor_split(out, config.chunks)
            for i, xi in enumerate(pieces_in):
                o = pieces_out[(i + 1) % config.chunks]
                y = streams_mod.compute(xi, w, config.iters)
                o[: min(o.shape[0], y.shape[0])].copy_(y[: o.shape[0]])

    expect_check_fails(Shifted, match="streamed == unchunked")


def test_serial_variant_with_one_layer_too_few_is_caught():
    class ShortSerial(Task):
        def run(self, variant, config, job, streams):
            x, w, out = job
            iters = config.iters - 1 if variant == "serial" else config.iters
            streams_mod.run_pipeline(x, w, out, chunks=config.chunks, iters=iters, streams=streams)

    expect_check_fails(ShortSerial, match="serial == unchunked")
