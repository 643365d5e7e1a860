"""m5 Tune DDP bucket sizes.

Compared: DistributedDataParallel on an MLP at several ``bucket_cap_mb`` (MiB), with and
without ``gradient_as_bucket_view`` (gradients are views into the flat buckets: no copy, no
second buffer) and ``static_graph`` (the graph is recorded once; DDP skips per-iteration
bookkeeping). Two gloo ranks on the CPU, NCCL when every rank has a GPU.

Check (world size 2):

* every bucket size and flag gives the gradients of one process on the full batch (after
  DDP rebuilt its buckets from the first iterations' gradient-ready order);
* gradients become ready last layer first (the reverse of registration order);
* the buckets DDP built (``_get_ddp_logging_data()["rebuilt_bucket_sizes"]``, bytes) are
  those that ``kernels.ddp.buckets.plan_buckets`` derives from the parameter sizes alone:
  walk the gradients in ready order, add one, close the bucket once it reaches the cap;
  the first bucket's cap is 1 MiB when ``bucket_cap_mb`` is left at its 25 MiB default.

Bench: ms per training step (slowest rank) at each cap for the four flag combinations, and
for the default flags the share of the all-reduce time hidden behind the backward pass:
``(t_no_sync + t_allreduce - t_ddp) / t_allreduce``, where ``t_no_sync`` is the same step
under ``ddp.no_sync()`` (no communication) and ``t_allreduce`` the bucket all-reduces alone.

Lesson: bucketing trades per-call latency against overlap. One all-reduce per parameter
pays the collective's fixed cost once per tensor; one bucket for the whole model cannot
start before the last gradient is ready, so nothing overlaps. Li et al. 2020 ("PyTorch
Distributed: Experiences on Accelerating Data Parallel Training", VLDB 13(12)): Sec. 3.2.3
shows the total all-reduce time of a model's gradients falling steeply as more parameters
go into each call (Fig. 2), and Sec. 5.2 measures ResNet-50 and BERT iterations against the
bucket size: both extremes are slow and the best lies at a few to tens of MB, hence the
25 MiB default and the small first bucket (the last layers' gradients, ready first, start
the first all-reduce early). The best cap depends on the model, the interconnect and the
backend: tune it by measuring, as this task does.
"""

from __future__ import annotations

import dataclasses
import statistics

import torch
import torch.nn.functional as F

from harness import System, task
from harness.claims import metric, time_ratio
from harness.launch import launch, resolve_backend
from harness.mutants import Mutant
from harness.train import record_samples
from kernels.ddp.bucket_ranks import FLAGS, bench_rank, buckets_rank, global_batch, mlp
from kernels.ddp.buckets import MIB, bucket_bytes, caps_bytes, plan_buckets
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


def cap_label(cap: float | None) -> str:
    return "cap=default(25MiB)" if cap is None else f"cap={cap:g}MiB"


def ddp_buckets(sizes_in_registration_order: list[int], cap_mb: float | None) -> list[int]:
    """Bytes of each bucket DDP builds for a feed-forward net: plan in reverse registration order."""
    ready = sizes_in_registration_order[::-1]
    return bucket_bytes(ready, plan_buckets(ready, cap_mb))


@task("m5.bucket_tuning", seed="m5", title="tune DDP bucket sizes")
class BucketTuning(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL step times when 2 GPUs are present
    # launching ranks costs tens of seconds on a busy 2-core machine (spawned interpreters)
    time_limit_s = {"check": 600.0, "bench": 1800.0}
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
        metric("slowdown_smallest_cap", ">=", 1.0, measured_by="default",
               text="one bucket per tensor is slower per step than the 25 MiB default"),
        metric("hidden_comm_best", ">=", 0.25, measured_by="default",
               text=">= 25 % of the all-reduce hides behind backward at the best cap"),
        time_ratio("view_static", to="default", at_most=1.05, config="default(25MiB)",
                   text="gradient_as_bucket_view + static_graph cost <= 1.05x the default flags"),
    )  # fmt: skip
    planner = staticmethod(ddp_buckets)
    comm_hook = None
    mutants = (
        Mutant("forward_order", "buckets filled in registration order",
               {"planner": staticmethod(buckets_forward_order)}, match="buckets"),
        Mutant("never_overshoot", "closes a bucket before it would pass the cap",
               {"planner": staticmethod(buckets_never_overshoot)}, match="buckets"),
        Mutant("no_small_first", "no 1 MiB first bucket under the default cap",
               {"planner": staticmethod(buckets_no_small_first)}, match="buckets"),
        Mutant("grads_summed", "a comm hook that sums, no / W", {"comm_hook": staticmethod(sum_hook)},
               match="gradients"),
    )  # fmt: skip

    @classmethod
    def rank_job(cls, cfg: BucketConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.bucket_tuning``)."""
        return bench_rank, (cfg, seed)

    def check(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        backend = "nccl" if ctx.is_cuda and resolve_backend("auto", world) == "nccl" else "gloo"
        runs = [(cap, False, False) for cap in cfg.caps_mb] + [(None, True, False), (cfg.caps_mb[1], True, True)]
        outs = launch(
            buckets_rank, world, args=(cfg, ctx.rng_seed, runs, self.comm_hook), backend=backend, timeout_s=600
        )
        single = mlp(cfg, ctx.rng_seed)
        x, y = global_batch(cfg, ctx.rng_seed)
        F.cross_entropy(single(x), y).backward()
        params = list(single.named_parameters())
        sizes = [p.numel() * p.element_size() for _, p in params]
        for rank, per_run in enumerate(outs):
            for (cap, view, static), got in zip(runs, per_run):
                where = f"rank {rank}, {cap_label(cap)}, bucket_view={view}, static_graph={static}"
                for (n, p), g in zip(params, got["grads"]):
                    name = "DDP gradients = single-process gradients at every bucket size"
                    ctx.assert_close(g, p.grad, name=name, where=f"{where}, {n}")
                ctx.expect(
                    got["ready_order"] == list(range(len(params)))[::-1],
                    f"{where}: gradients became ready in order {got['ready_order']}, not last layer first",
                    name="gradients ready in reverse registration order",
                )
                want = self.planner(sizes, cap)
                ctx.expect(
                    got["bucket_sizes"] == want,
                    f"{where}: DDP built buckets of {got['bucket_sizes']} bytes, the plan from the parameter sizes "
                    f"says {want} ({len(got['bucket_sizes'])} vs {len(want)} buckets)",
                    name="DDP's buckets = the plan from the parameter sizes",
                )
        ctx.note(f"parameter bytes, registration order: {sizes} ({sum(sizes) / MIB:.2f} MiB)")

    def bench(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        if ctx.is_cuda and resolve_backend("auto", world) != "nccl":
            ctx.skip_part("NCCL step times", f"needs {world} GPUs, found {torch.cuda.device_count()}")
            return
        backend = "nccl" if ctx.is_cuda else "gloo"
        per_rank = launch(bench_rank, world, args=(cfg, ctx.rng_seed), backend=backend, timeout_s=600)
        med = {}
        for key in per_rank[0]:
            step_ms = [max(t) for t in zip(*(r[key] for r in per_rank))]  # a step ends with its slowest rank
            name, cap = key
            record_samples(ctx, name, step_ms, config=f"{cap_label(cap)},{cfg.label()}", items=cfg.batch,
                           mode=f"wall-clock in rank, {backend}")  # fmt: skip
            med[key] = statistics.median(step_ms)
        hidden = []  # (t_no_sync + t_allreduce - t_ddp) / t_allreduce, clipped to [0, 1]
        for c in cfg.caps_mb:
            t_ar = med[("allreduce_only", c)]
            hidden.append(max(0.0, min(1.0, (med[("no_sync", c)] + t_ar - med[("default", c)]) / t_ar)))
        xs = [caps_bytes(c)[1] / MIB for c in cfg.caps_mb]  # MiB (the default: 25)
        for name in FLAGS:
            ctx.curve("step time vs bucket_cap_mb", xs, [med[(name, c)] for c in cfg.caps_mb],
                      x_label="bucket_cap_mb (MiB)", y_label="ms per step", series=name, log_x=True)  # fmt: skip
        ctx.curve("all-reduce hidden behind backward", xs, hidden, x_label="bucket_cap_mb (MiB)", y_label="share",
                  log_x=True)  # fmt: skip
        ctx.metric("hidden_comm_best", max(hidden))
        ctx.metric("slowdown_smallest_cap", med[("default", cfg.caps_mb[0])] / med[("default", cfg.caps_mb[-1])])
