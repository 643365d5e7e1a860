"""m3 GPU utilization with and without streams.

Compared: one job done two ways. A host tensor (rows, F) in pinned memory is cut into
``chunks`` pieces; each piece is copied to the GPU, run through ``iters`` layers of
``tanh(x @ W)`` (W: (F, F)) and copied back into a pinned host buffer.

* ``serial`` (baseline): every copy and kernel on the current stream, one after another.
* ``streamed``: piece i goes to stream ``i % streams``; the copy-in of one piece, the
  compute of another and the copy-out of a third can run at once (the H200 has separate
  copy engines for each direction, and kernels run on the SMs). The side streams first wait
  for the current stream (W and the buffers are ready), and the current stream waits for
  all of them at the end, so a caller, and the timer's events, see one finished job.

Check: the output of both variants equals the unchunked computation ``tanh(x @ W)^iters``
on the whole input, for uneven chunks (rows not divisible by chunks). The output buffer is
poisoned with NaN before every run, so a piece that is never copied back fails. On CPU the
same code runs with streams disabled (each ``with stream`` is a no-op; the round-robin
assignment and the waits' places are the same code) and the overlap measurement is
recorded as skipped ("needs cuda"). On CUDA the streamed run is repeated three times: a
missing wait shows up as a result that changes between runs (METHOD: "a moving error is a
race").

Bench (CUDA): each variant's time (events around the whole job); ``overlap_gained`` =
serial / streamed; the stages timed alone give the ceiling ``ideal_overlap`` = (h2d +
compute + d2h) / max of the three; NVML's GPU-busy % while each variant runs for ~1 s
(``harness.gpu_monitor``): kernels keep the GPU busy beside copies only with streams.

Lesson: streams buy overlap, not speed of any one stage: the gain is bounded by the sum
of the stages over the largest one, and it needs pinned host memory (a pageable copy
blocks the host and serialises everything), enough pieces to fill the pipeline, and
pieces large enough that launch costs stay small.
(CUDA C++ Programming Guide, "Asynchronous Concurrent Execution": overlap of data
transfer and kernel execution needs page-locked host memory and distinct non-default
streams.) On a CPU there is nothing to overlap: the check runs, the claims are cuda-only.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import speedup
from harness.gpu_monitor import GpuMonitor
from harness.mutants import Mutant
from harness.timing import measure


@dataclasses.dataclass(frozen=True)
class StreamsConfig:
    """A (rows, features) float32 job cut into pieces."""

    rows: int
    """rows of the host input"""
    features: int
    """F: columns of the input and the size of the square weight W"""
    chunks: int
    """pieces the rows are cut into (``torch.tensor_split``: sizes differ by at most one)"""
    iters: int
    """layers of tanh(x @ W) per piece: the compute a copy can hide behind"""
    streams: int = 2
    """streams of the ``streamed`` variant (pieces go round-robin)"""

    def label(self) -> str:
        return f"rows={self.rows},F={self.features},chunks={self.chunks},iters={self.iters},streams={self.streams}"


def compute(x: torch.Tensor, w: torch.Tensor, iters: int) -> torch.Tensor:
    """``iters`` layers of tanh(x @ w): (R, F) -> (R, F)."""
    for _ in range(iters):
        x = torch.tanh(x @ w)
    return x


def run_pipeline(
    x_host: torch.Tensor, w: torch.Tensor, out_host: torch.Tensor, *, chunks: int, iters: int, streams: list | None
) -> None:
    """Copy in, compute and copy out ``x_host`` piece by piece into ``out_host``.

    Args:
        x_host, out_host: (R, F) host tensors (pinned on CUDA, so the copies are asynchronous).
        w: (F, F) on the compute device.
        streams: None for the serial variant (current stream); else the side streams, or a
            list of None (streams disabled: the CPU path, same code).
    Asynchronous on CUDA: synchronize before reading ``out_host``.
    """
    device = w.device
    pieces = zip(torch.tensor_split(x_host, chunks), torch.tensor_split(out_host, chunks))  # views
    if streams is None:
        for xi, oi in pieces:
            oi.copy_(compute(xi.to(device, non_blocking=True), w, iters), non_blocking=True)
        return
    live = [s for s in streams if s is not None]
    current = torch.cuda.current_stream(device) if live else None
    for s in live:
        s.wait_stream(current)  # W and the buffers were written on the current stream
    for i, (xi, oi) in enumerate(pieces):
        s = streams[i % len(streams)]
        with torch.cuda.stream(s) if s is not None else contextlib.nullcontext():
            # allocated and used on s only, so the caching allocator recycles them safely
            xd = xi.to(device, non_blocking=True)
            oi.copy_(compute(xd, w, iters), non_blocking=True)
    for s in live:
        current.wait_stream(s)  # the job ends when every side stream is done


def make_job(config: StreamsConfig, device, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_host, w on device, out_host), host buffers pinned when the device is CUDA."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(config.rows, config.features, generator=g)  # (R, F)
    w = (torch.randn(config.features, config.features, generator=g) / config.features**0.5).to(device)  # (F, F)
    out = torch.empty_like(x)
    if torch.device(device).type == "cuda":
        x, out = x.pin_memory(), out.pin_memory()
    return x, w, out


# -- wrong pipelines (the mutants) --------------------------------------------------------------
def _drops_last_piece(self, variant, config, job, streams):
    """WRONG: the streamed run leaves the last piece out (its rows keep the NaN poison)."""
    x, w, out = job
    if variant != "streamed":
        return Streams.run(self, variant, config, job, streams)
    n = torch.tensor_split(torch.arange(x.shape[0]), config.chunks)[-1].numel()
    run_pipeline(x[:-n], w, out[:-n], chunks=config.chunks - 1, iters=config.iters, streams=streams)


def _shifted(self, variant, config, job, streams):
    """WRONG: the streamed run writes piece i into output slot i + 1."""
    x, w, out = job
    if variant != "streamed":
        return Streams.run(self, variant, config, job, streams)
    pieces_out = torch.tensor_split(out, config.chunks)
    for i, xi in enumerate(torch.tensor_split(x, config.chunks)):
        o, y = pieces_out[(i + 1) % config.chunks], compute(xi.to(w.device), w, config.iters)
        o[: min(o.shape[0], y.shape[0])].copy_(y[: o.shape[0]])


def _short_serial(self, variant, config, job, streams):
    """WRONG: the serial variant runs one layer too few."""
    x, w, out = job
    iters = config.iters - 1 if variant == "serial" else config.iters
    run_pipeline(x, w, out, chunks=config.chunks, iters=iters, streams=streams)


_OVERLAP = "{} streams overlap copies with compute: the job >= 1.3x faster than serial (balanced stages)"


@task("m3.streams", seed="m3", title="GPU utilization with and without streams")
class Streams(Comparison):
    __doc__ = __doc__
    variants = ("serial", "streamed")
    gpu_check = True
    sizes = {
        # 37 rows in 5 and 4 pieces: uneven pieces, and more pieces than streams
        "tiny": [StreamsConfig(37, 16, 5, 2, streams=2), StreamsConfig(37, 16, 4, 1, streams=3)],
        # 256 MiB in 16 pieces of 16 MiB: copy ~0.3 ms each way at PCIe Gen5 rates, compute of
        # similar length (2 x 8.6 GFLOP of FP32); the stages are balanced so overlap can show
        "gpu": [StreamsConfig(65536, 1024, 16, 2, streams=2), StreamsConfig(65536, 1024, 16, 2, streams=4)],
    }

    claims = (
        speedup("streamed", over="serial", at_least=1.3, config="streams=2", device="cuda", text=_OVERLAP.format(2)),
        speedup("streamed", over="serial", at_least=1.3, config="streams=4", device="cuda", text=_OVERLAP.format(4)),
    )
    mutants = (
        Mutant("drops_last_piece", "a piece not copied back", {"run": _drops_last_piece}, match="streamed =="),
        Mutant("pieces_shifted", "piece i written to slot i + 1", {"run": _shifted}, match="streamed == unchunked"),
        Mutant("short_serial", "serial runs one layer too few", {"run": _short_serial}, match="serial == unchunked"),
    )

    def streams_for(self, variant: str, config: StreamsConfig, device) -> list | None:
        if variant == "serial":
            return None
        if torch.device(device).type == "cuda":
            return [torch.cuda.Stream(device) for _ in range(config.streams)]
        return [None] * config.streams  # streams disabled: the same code path on CPU

    def run(self, variant: str, config: StreamsConfig, job, streams) -> None:
        x, w, out = job
        run_pipeline(x, w, out, chunks=config.chunks, iters=config.iters, streams=streams)

    def check(self, ctx) -> None:
        on_gpu = ctx.is_cuda
        if not on_gpu:
            ctx.require("cuda", part="streams enabled (CPU runs the streamed code with streams disabled)")
        for config in ctx.configs:
            job = make_job(config, ctx.device, ctx.rng_seed)
            x, w, out = job
            expected = compute(x.to(ctx.device), w, config.iters).cpu()  # unchunked, one stream
            for v in self.variants:
                streams = self.streams_for(v, config, ctx.device)
                for rep in range(3 if on_gpu and v == "streamed" else 1):
                    out.fill_(float("nan"))  # poison: every element must be written
                    self.run(v, config, job, streams)
                    ctx.sync()
                    ctx.assert_close(out, expected, name=f"{v} == unchunked", where=f"{config.label()}, run {rep + 1}")

    def prepare(self, ctx, impl: str, config: StreamsConfig) -> Prepared:
        job = make_job(config, ctx.device, ctx.rng_seed)
        streams = self.streams_for(impl, config, ctx.device)
        return Prepared(fn=lambda: self.run(impl, config, job, streams), items=config.rows, item_unit="rows")

    def bench(self, ctx) -> None:
        if not ctx.require("cuda", part="overlap gained (serial / streamed time) and GPU utilization"):
            return
        for config in ctx.configs:
            medians = {}
            for v in self.variants:
                prepared = self.prepare(ctx, v, config)
                medians[v] = ctx.measure(v, prepared, config=config, mode="warm").median_ms
                self._utilization(ctx, v, config, prepared.fn, medians[v])
            tag = f"streams{config.streams}"
            ctx.metric(f"overlap_gained_{tag}", medians["serial"] / medians["streamed"])
            stages = self._stages(ctx, config)
            for k, ms in stages.items():
                ctx.metric(f"stage_{k}_ms_{tag}", ms)
            ctx.metric(f"ideal_overlap_{tag}", sum(stages.values()) / max(stages.values()))

    def _stages(self, ctx, config: StreamsConfig) -> dict[str, float]:
        """Median time of the three stages of the whole job, each alone on one stream."""
        x, w, out = make_job(config, ctx.device, ctx.rng_seed)
        xd = x.to(ctx.device)
        yd = compute(xd, w, config.iters)
        fns = {
            "h2d": lambda: xd.copy_(x, non_blocking=True),
            "compute": lambda: compute(xd, w, config.iters),
            "d2h": lambda: out.copy_(yd, non_blocking=True),
        }
        t = ctx.min_run_time_s / 2
        return {k: measure(f, ctx.device, mode="warm", min_run_time_s=t).median_ms for k, f in fns.items()}

    def _utilization(self, ctx, variant: str, config: StreamsConfig, fn, median_ms: float) -> None:
        """NVML GPU-busy % while ``fn`` runs back-to-back (queued without host syncs) for ~1 s."""
        mon = GpuMonitor(ctx.device.index or 0, interval_s=0.02)
        if not mon.available:
            ctx.skip_part(f"GPU utilization ({variant})", mon.reason)
            return
        with mon:
            for _ in range(max(3, int(1000 / max(median_ms, 1e-3)))):
                fn()
            ctx.sync()
        mon.close()
        sm = mon.summary()
        if sm:
            ctx.metric(f"gpu_util_mean_pct_{variant}_streams{config.streams}", sm["gpu_util_mean_pct"])
        ctx.note(f"{variant} [{config.label()}]: {mon.report()}")
