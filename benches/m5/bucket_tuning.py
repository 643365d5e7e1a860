"""m5 Tune DDP bucket sizes.

Compared: DistributedDataParallel on an MLP (two gloo ranks on the CPU, NCCL when every rank has
a GPU) at several ``bucket_cap_mb`` (MiB), with and without ``gradient_as_bucket_view``
(gradients are views into the flat buckets: no copy) and ``static_graph`` (the graph recorded
once). The check holds every run to one process's gradients on the full batch, and DDP's rebuilt
buckets (bytes) to the plan ``kernels.ddp.buckets`` derives from the parameter sizes alone: walk
the gradients in ready order (last layer first), close a bucket once it reaches the cap (the
first one's is 1 MiB under the 25 MiB default). The bench times steps and the hidden all-reduce share.

Lesson: bucketing trades per-call latency against overlap: one all-reduce per parameter pays the
collective's fixed cost once per tensor; one bucket for the whole model cannot start before the
last gradient is ready. Li et al. 2020 ("PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", VLDB 13(12)) show the total all-reduce time falling steeply as more
parameters go into each call (Sec. 3.2.3, Fig. 2), and ResNet-50 and BERT iterations slow at
both extremes of bucket size, best at a few to tens of MB (Sec. 5.2): hence the 25 MiB default
and the small first bucket (the last layers' gradients, ready first, start the first all-reduce
early). The best cap depends on the model, interconnect and backend: measure it.
"""

from __future__ import annotations

import dataclasses

from harness import System, task
from harness.claims import metric, time_ratio
from harness.launch import launch
from harness.multirank import bench_backend, check_backend, record_slowest_rank
from harness.mutants import Mutant
from kernels.ddp.bucket_ranks import FLAGS, bench_rank, buckets_rank, single_process_model
from kernels.ddp.buckets import MIB, cap_label, caps_bytes, ddp_buckets, hidden_share
from kernels.ddp.wrong import buckets_forward_order, buckets_never_overshoot, buckets_no_small_first, sum_hook


@dataclasses.dataclass(frozen=True)
class BucketConfig:
    """An MLP, its global batch and the bucket caps swept."""

    in_features: int
    """input features (random normal inputs)"""
    hidden: tuple[int, ...]
    """MLP hidden widths (parameter sizes set the buckets)"""
    batch: int
    """global batch per step; 2 ranks take half each"""
    caps_mb: tuple[float | None, ...] = (0.01, 0.25, 0.5, None)
    """bucket_cap_mb values, MiB, ascending; None (DDP's default: 25 MiB, first bucket 1 MiB) last"""
    steps: int = 5
    """timed steps per cap and flag combination"""
    warmup: int = 3
    """untimed steps first (buckets are rebuilt after the first, static graphs after the second)"""

    def label(self) -> str:
        return f"mlp={self.in_features}-{'-'.join(map(str, self.hidden))}-10,B={self.batch}"


def _wrong_plan(name: str, what: str, planner) -> Mutant:
    """A mutant planning the buckets with ``planner`` instead of :func:`ddp_buckets`."""
    return Mutant(name, what, {"planner": staticmethod(planner)}, match="buckets")


_GRADS = "DDP gradients = single-process gradients at every bucket size"
_SMALLEST = "one bucket per tensor is slower per step than the 25 MiB default"
_HIDDEN = ">= 25 % of the all-reduce hides behind backward at the best cap"
_FLAGS = "gradient_as_bucket_view + static_graph cost <= 1.05x the default flags"


@task("m5.bucket_tuning", seed="m5", title="tune DDP bucket sizes")
class BucketTuning(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL step times when 2 GPUs are present
    time_limit_s = {"check": 600.0, "bench": 1800.0}  # spawned ranks start slowly on a busy 2-core machine
    variants = (*FLAGS, "no_sync", "allreduce_only")
    sizes = {
        # parameter bytes (reverse order): 40, 10240, 1024, 524288, 2048, 1048576, 2048, 524288, 1024, 131072
        "tiny": BucketConfig(in_features=128, hidden=(256, 512, 512, 256), batch=16, steps=3, warmup=3),
        "cpu": BucketConfig(in_features=512, hidden=(1024,) * 4, batch=64, caps_mb=(0.01, 0.5, 2, None)),
        "gpu": BucketConfig(4096, (4096,) * 8, 1024, caps_mb=(0.1, 1, 5, 25, 100, None), steps=20, warmup=5),
    }
    metrics = {
        "hidden_comm_best": "largest share of the all-reduce time hidden behind backward over the caps (0..1)",
        "slowdown_smallest_cap": "step ms at the smallest cap / at DDP's default cap (> 1: tiny buckets cost)",
    }
    claims = (
        metric("slowdown_smallest_cap", ">=", 1.0, measured_by="default", text=_SMALLEST),
        metric("hidden_comm_best", ">=", 0.25, measured_by="default", text=_HIDDEN),
        time_ratio("view_static", to="default", at_most=1.05, config="default(25MiB)", text=_FLAGS),
    )
    planner = staticmethod(ddp_buckets)
    comm_hook = None
    mutants = (
        _wrong_plan("forward_order", "buckets filled in registration order", buckets_forward_order),
        _wrong_plan("never_overshoot", "closes a bucket before it would pass the cap", buckets_never_overshoot),
        _wrong_plan("no_small_first", "no 1 MiB first bucket under the default cap", buckets_no_small_first),
        Mutant(
            "grads_summed", "a comm hook that sums, no / W", {"comm_hook": staticmethod(sum_hook)}, match="gradients"
        ),
    )

    @classmethod
    def rank_job(cls, cfg: BucketConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.bucket_tuning``)."""
        return bench_rank, (cfg, seed)

    def check(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        backend = check_backend(ctx, world)
        runs = [(cap, False, False) for cap in cfg.caps_mb] + [(None, True, False), (cfg.caps_mb[1], True, True)]
        args = (cfg, ctx.rng_seed, runs, self.comm_hook)
        outs = launch(buckets_rank, world, args=args, backend=backend, timeout_s=600)
        params = list(single_process_model(cfg, ctx.rng_seed).named_parameters())
        sizes = [p.numel() * p.element_size() for _, p in params]
        for rank, per_run in enumerate(outs):
            for (cap, view, static), got in zip(runs, per_run):
                where = f"rank {rank}, {cap_label(cap)}, bucket_view={view}, static_graph={static}"
                for (n, p), g in zip(params, got["grads"]):
                    ctx.assert_close(g, p.grad, name=_GRADS, where=f"{where}, {n}")
                ctx.expect(
                    got["ready_order"] == list(range(len(params)))[::-1],
                    f"{where}: gradients became ready in order {got['ready_order']}, not last layer first",
                    name="gradients ready in reverse registration order",
                )
                want = self.planner(sizes, cap)
                ctx.expect(
                    got["bucket_sizes"] == want,
                    f"{where}: DDP built buckets of {got['bucket_sizes']} bytes, the plan from the sizes says {want}",
                    name="DDP's buckets = the plan from the parameter sizes",
                )
        ctx.note(f"parameter bytes, registration order: {sizes} ({sum(sizes) / MIB:.2f} MiB)")

    def bench(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        if (backend := bench_backend(ctx, world, "NCCL step times")) is None:
            return
        per_rank = launch(bench_rank, world, args=(cfg, ctx.rng_seed), backend=backend, timeout_s=600)
        ms = {}  # (variant, cap) -> median ms of a step (slowest rank)
        for name, cap in per_rank[0]:
            steps = [r[(name, cap)] for r in per_rank]
            label = f"{cap_label(cap)},{cfg.label()}"
            m = record_slowest_rank(ctx, name, steps, backend=backend, config=label, items=cfg.batch)
            ms[(name, cap)] = m.median_ms
        hidden = [hidden_share(ms[("default", c)], ms[("no_sync", c)], ms[("allreduce_only", c)]) for c in cfg.caps_mb]
        xs = [caps_bytes(c)[1] / MIB for c in cfg.caps_mb]  # MiB (the default: 25)
        axes = {"x_label": "bucket_cap_mb (MiB)", "log_x": True}
        for name in FLAGS:
            steps = [ms[(name, c)] for c in cfg.caps_mb]
            ctx.curve("step time vs bucket_cap_mb", xs, steps, y_label="ms per step", series=name, **axes)
        ctx.curve("all-reduce hidden behind backward", xs, hidden, y_label="share", **axes)
        ctx.metric("hidden_comm_best", max(hidden))
        ctx.metric("slowdown_smallest_cap", ms[("default", cfg.caps_mb[0])] / ms[("default", cfg.caps_mb[-1])])
