"""m5 Pipeline parallelism for a Transformer.

Compared: a causal Transformer LM (``kernels.pipelining``'s ``StagedLM``) in K = 2 stages on 2
processes (gloo on CPU, NCCL with a GPU per rank) under ``torch.distributed.pipelining``,
against the same model in one process: ``pipeline()`` (torch.export splits it at ``blocks.k``)
with ``ScheduleGPipe`` (all M forwards, then all backwards) and a hand-split ``PipelineStage``
with ``Schedule1F1B`` (K-s warm-up forwards on stage s, then 1 backward, 1 forward).

The check compares outputs, losses and gradients with one process (the schedule must divide the
summed gradients by M: micro-batch losses are means over B/M samples), and the activations in
flight and the bubble (K-1)/(M+K-1) with step-by-step simulations. The bench measures the
bubble as the median over stages and steps of 1 - busy / step, busy being a stage's time in its
own forward, backward and loss calls and step the slowest rank's wall time
(``kernels.pipelining.pipeline.measured_bubble``), and samples/s, both against M.

Lesson: a pipeline keeps K devices busy only once it is full. GPipe (Huang et al. 2019, "GPipe",
NeurIPS; arXiv:1811.06965) gives the idle share (K-1)/(M+K-1) and reports it negligible for M >=
4K: at K = 2, 50 % idle at M = 1 and 11 % at M = 8. Narayanan et al. ("Efficient Large-Scale
Language Model Training on GPU Clusters Using Megatron-LM", SC 2021, Sec. 2.2.1) write the
bubble as (K-1)/M of the *ideal* compute time, not a share of the step: read as one it
overstates the idle time (M = 1, K = 2: 100 % instead of 50 %). 1F1B does not shrink the bubble;
it bounds the activations held to K micro-batches instead of M, which lets M grow. More
micro-batches cost too: each is a smaller matmul and one more send/receive per stage boundary,
so on a CPU the measured bubble sits above the formula and throughput can fall with M.
"""

from __future__ import annotations

import itertools

import torch
from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe

from harness import System, task
from harness.claims import metric
from harness.launch import launch
from harness.multirank import bench_backend, check_backend, record_slowest_rank
from harness.mutants import Mutant
from kernels.pipelining.pipeline import gpipe_bubble, measured_bubble, simulate, table_row
from kernels.pipelining.ranks import PipeConfig, bench_rank, grads_rank, single_stage_reference
from kernels.pipelining.wrong import bubble_over_m

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
BUBBLES = (("gpipe", 1), ("gpipe", 8), ("1f1b", 8))  # the measured bubbles recorded as metrics
_GRADS = "pipelined gradients = single-stage gradients"
_IDLE = "idle share of a step"


@task("m5.pipeline_parallel", seed="m5", title="pipeline parallelism for a Transformer")
class PipelineParallelTask(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL ranks when 2 GPUs are present; one GPU: the check runs on CPU ranks (gloo)
    time_limit_s = {"check": 300.0, "bench": 1200.0}  # two spawned ranks start slowly on a busy machine
    variants = ("gpipe", "1f1b")
    sizes = {
        "tiny": PipeConfig(d_model=32, n_layers=4, seq_len=16, vocab=64, batch=8),
        "cpu": PipeConfig(d_model=128, n_layers=4, seq_len=64, vocab=512, batch=32, n_heads=4, steps=5, warmup=1),
        "gpu": PipeConfig(1024, 8, 512, 32000, 64, n_heads=16, micro_batches=(1, 2, 4, 8, 16), steps=10, warmup=3),
    }
    metrics = {
        **{f"bubble_{s}_m{m}": f"measured idle share of a {s} step at M={m} (0..1)" for s, m in BUBBLES},
        "gpipe_speedup_m8": "samples/s of GPipe at M=8 over M=1 (x)",
        "bubble_drop_gpipe_m8": "measured GPipe idle share at M=1 minus at M=8 (formula: 0.5 - 0.11)",
    }
    claims = (
        metric(
            "bubble_drop_gpipe_m8",
            ">=",
            0.1,
            measured_by="gpipe",
            text="GPipe's measured idle share at M=8 is >= 10 points below M=1's (formula: 39 points)",
        ),
        metric(
            "bubble_gpipe_m1",
            ">=",
            0.4,
            measured_by="gpipe",
            text="GPipe at M=1 idles >= 40 % of the step (formula: 50 %)",
        ),
    )
    schedules = SCHEDULES  # the schedule classes the ranks run, by name (a mutant swaps them)
    scale_grads = True  # divide the accumulated gradients by M (the losses are per-micro-batch means)
    bubble = staticmethod(gpipe_bubble)  # the bubble share the bench writes beside the measurement
    mutants = (
        Mutant(
            "loss_not_scaled",
            "gradients summed over micro-batches: M times too big",
            {"scale_grads": False},
            match="pipelined gradients",
        ),
        Mutant(
            "bubble_over_m",
            "bubble share (K-1)/M instead of (K-1)/(M+K-1)",
            {"bubble": staticmethod(bubble_over_m)},
            match="bubble formula",
        ),
        Mutant(
            "one_f_one_b_is_gpipe",
            "the 1F1B slot runs GPipe: M activations in flight",
            {"schedules": {"gpipe": ScheduleGPipe, "1f1b": ScheduleGPipe}},
            match="in flight",
        ),
    )

    @classmethod
    def rank_job(cls, cfg: PipeConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.pipeline_parallel``)."""
        return bench_rank, (cfg, seed, SCHEDULES)

    def check(self, ctx) -> None:
        for K, M, name in itertools.product((1, 2, 3, 4), (1, 2, 4, 8), SCHEDULES):
            got, want = torch.tensor(self.bubble(K, M)), torch.tensor(simulate(K, M, name)["bubble"])
            ctx.assert_close(got, want, name="bubble formula = simulated schedule", where=f"{name}, K={K}, M={M}")
        cfg, world = ctx.configs[0], 2
        backend = check_backend(ctx, world)  # one GPU: the math is checked on CPU ranks with gloo
        args = (cfg, ctx.rng_seed, self.schedules, self.scale_grads)
        outs = launch(grads_rank, world, args=args, backend=backend, timeout_s=240)
        ref, logits, loss = single_stage_reference(cfg, ctx.rng_seed)
        for name in SCHEDULES:
            where = f"{name}, K={world}, M={cfg.check_micro_batches}, {backend}"
            last = outs[-1][name]
            ctx.assert_close(last["logits"], logits, name="pipelined outputs = single-stage outputs", where=where)
            mean_loss = torch.tensor(sum(last["losses"]) / len(last["losses"]))
            ctx.assert_close(mean_loss, loss, name="mean micro-batch loss = full-batch loss", where=where)
            seen = [n for out in outs for n in out[name]["grads"]]
            ctx.expect(
                sorted(seen) == sorted(ref),
                f"{where}: the stages hold {sorted(seen)}, the model {sorted(ref)}",
                name="stages partition the parameters",
            )
            for rank, out in enumerate(outs):
                for n, g in out[name]["grads"].items():
                    ctx.assert_close(g, ref[n].grad, name=_GRADS, where=f"{where}, stage {rank}, {n}")
            want = simulate(world, cfg.check_micro_batches, name)["in_flight"]
            got = [out[name]["in_flight"] for out in outs]
            ctx.expect(
                got == want,
                f"{where}: micro-batches in flight per stage {got}, the {name} schedule holds {want}",
                name="activations in flight per stage",
            )

    def bench(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        if (backend := bench_backend(ctx, world, "pipeline on GPUs")) is None:
            return
        outs = launch(bench_rank, world, args=(cfg, ctx.rng_seed, self.schedules), backend=backend, timeout_s=500)
        rate, bubble = {}, {}  # (schedule, M) -> samples/s, measured idle share
        for name, micro in itertools.product(self.schedules, cfg.micro_batches):
            if (key := f"{name},M={micro}") not in outs[0]:
                ctx.skip_part(f"{name} at M={micro}", f"torch's Schedule1F1B needs M >= K = {world} micro-batches")
                continue
            label = f"M={micro},K={world},{backend},{cfg.label()}"
            walls = [o[key]["wall"] for o in outs]
            m = record_slowest_rank(ctx, name, walls, backend=backend, config=label, items=cfg.batch)
            rate[(name, micro)] = cfg.batch / (m.median_ms / 1e3)
            bubble[(name, micro)] = measured_bubble([o[key]["busy"] for o in outs], m.samples_ms)
            if (name, micro) in BUBBLES:
                ctx.metric(f"bubble_{name}_m{micro}", bubble[(name, micro)])
        axes = {"x_label": "micro-batches M"}
        for name in self.schedules:
            xs = [m for s, m in rate if s == name]
            ys = [bubble[(name, m)] for m in xs]
            ctx.curve("bubble vs micro-batches", xs, ys, y_label=_IDLE, series=f"{name} measured", **axes)
            ys = [rate[(name, m)] for m in xs]
            ctx.curve("samples/s vs micro-batches", xs, ys, y_label="samples/s", series=name, **axes)
        ms = list(cfg.micro_batches)
        formula = [self.bubble(world, m) for m in ms]
        ctx.curve("bubble vs micro-batches", ms, formula, y_label=_IDLE, series="(K-1)/(M+K-1)", **axes)
        if ("gpipe", 1) in rate and ("gpipe", 8) in rate:
            ctx.metric("gpipe_speedup_m8", rate[("gpipe", 8)] / rate[("gpipe", 1)])
            ctx.metric("bubble_drop_gpipe_m8", bubble[("gpipe", 1)] - bubble[("gpipe", 8)])
        rows = [table_row(s, m, rate[(s, m)], bubble[(s, m)], self.bubble(world, m)) for s, m in rate]
        ctx.table("throughput and bubble per schedule and M", rows)
