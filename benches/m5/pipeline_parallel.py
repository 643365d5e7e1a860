"""m5 Pipeline parallelism for a Transformer.

Compared: a causal Transformer LM (``kernels.pipelining.pipeline.StagedLM``) cut into K = 2
stages on 2 processes (gloo on CPU, NCCL with a GPU per rank) and run by
``torch.distributed.pipelining``, against the same model in one process on the whole batch:

* ``pipeline()`` (the tracing front end: torch.export splits the model at ``blocks.k``) with
  ``ScheduleGPipe``: all M micro-batch forwards, then all backwards;
* ``PipelineStage`` on a hand-split model (each rank deletes what is not its own) with
  ``Schedule1F1B``: K-s warm-up forwards on stage s, then one backward / one forward.

Check: the last stage's logits equal the single-process logits and the per-micro-batch
losses average to the full-batch loss; every stage's parameter gradients equal the
single-process gradients of the mean loss (the schedule divides the accumulated gradients
by M: each micro-batch's loss is a mean over B/M samples, so summing M of them without the
1/M gives M times the gradient); the stages partition the parameters; the most micro-batches
whose activations a stage holds at once is M under GPipe and K-s under 1F1B, as the
step-by-step simulation of each schedule says; and the bubble formula (K-1)/(M+K-1) equals
the idle share of the simulated schedules for K = 1..4, M = 1..8.

Bench: samples/s for M = 1, 2, 4, 8 at a fixed global batch, both schedules, with the
measured bubble beside the formula: each stage's busy time is the time inside its forward,
backward and loss calls (``StageClock``); the rest of the step it waits for its neighbour.

Lesson: a pipeline keeps K devices busy only once it is full. GPipe (Huang et al. 2019,
"GPipe", NeurIPS; arXiv:1811.06965) gives the idle share (K-1)/(M+K-1) and reports it negligible
for M >= 4K; at K = 2 that is 50 % idle at M = 1 and 11 % at M = 8. Narayanan et al. (2021,
"Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC,
section 2.2.1) write the same bubble as (K-1)/M of the *ideal* compute time: that ratio is
not a share of the step, and reading it as one overstates the idle time (M = 1, K = 2: 100 %
instead of 50 %). 1F1B does not shrink the bubble; it bounds the activations held to K
micro-batches instead of M, which is what lets M grow. More micro-batches are not free: each
one is a smaller matrix multiply and one more send/receive per stage boundary, so on a CPU
with tiny stages the measured bubble sits above the formula (communication and the loss
counted as waiting) and throughput can fall with M even as the bubble shrinks.
"""

from __future__ import annotations

import statistics

import torch
from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe

from harness import System, task
from harness.claims import metric
from harness.launch import launch, resolve_backend
from harness.mutants import Mutant
from harness.train import record_samples
from kernels.pipelining.pipeline import gpipe_bubble, lm_loss, simulate
from kernels.pipelining.ranks import PipeConfig, batch, bench_rank, grads_rank
from kernels.pipelining.wrong import bubble_over_m

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
BUBBLES = (("gpipe", 1), ("gpipe", 8), ("1f1b", 8))  # the measured bubbles recorded as metrics


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
        metric("bubble_drop_gpipe_m8", ">=", 0.1, measured_by="gpipe",
               text="GPipe's measured idle share at M=8 is >= 10 points below M=1's (formula: 39 points)"),
        metric("bubble_gpipe_m1", ">=", 0.4, measured_by="gpipe",
               text="GPipe at M=1 idles >= 40 % of the step (formula: 50 %)"),
    )  # fmt: skip
    #: the schedule classes the ranks run, by name (staticmethods are not needed: classes)
    schedules = SCHEDULES
    #: divide the accumulated gradients by M (the losses are per-micro-batch means)
    scale_grads = True
    #: the bubble share the bench writes beside the measurement
    bubble = staticmethod(gpipe_bubble)
    mutants = (
        Mutant("loss_not_scaled", "gradients summed over micro-batches: M times too big",
               {"scale_grads": False}, match="pipelined gradients"),
        Mutant("bubble_over_m", "bubble share (K-1)/M instead of (K-1)/(M+K-1)",
               {"bubble": staticmethod(bubble_over_m)}, match="bubble formula"),
        Mutant("one_f_one_b_is_gpipe", "the 1F1B slot runs GPipe: M activations in flight",
               {"schedules": {"gpipe": ScheduleGPipe, "1f1b": ScheduleGPipe}}, match="in flight"),
    )  # fmt: skip

    @classmethod
    def rank_job(cls, cfg: PipeConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.pipeline_parallel``)."""
        return bench_rank, (cfg, seed, SCHEDULES)

    def _backend(self, ctx) -> str | None:
        if ctx.is_cuda:
            return "nccl" if resolve_backend("auto", 2) == "nccl" else None
        return "gloo"

    def check(self, ctx) -> None:
        for K in (1, 2, 3, 4):
            for M in (1, 2, 4, 8):
                for name in SCHEDULES:
                    sim = simulate(K, M, name)["bubble"]
                    ctx.assert_close(
                        torch.tensor(self.bubble(K, M)),
                        torch.tensor(sim),
                        name="bubble formula = simulated schedule",
                        where=f"{name}, K={K}, M={M}",
                    )
        cfg, world = ctx.configs[0], 2
        backend = self._backend(ctx) or "gloo"  # one GPU: the math is checked on CPU ranks with gloo
        if ctx.is_cuda and backend == "gloo":
            ctx.note("fewer than 2 GPUs: the check ran on CPU ranks with gloo")
        outs = launch(
            grads_rank,
            world,
            args=(cfg, ctx.rng_seed, self.schedules, self.scale_grads),
            backend=backend,
            timeout_s=240,
        )
        torch.manual_seed(ctx.rng_seed)
        model = cfg.model()
        ids, targets = batch(cfg, ctx.rng_seed)
        logits = model(ids)
        loss = lm_loss(logits, targets)
        loss.backward()
        ref = dict(model.named_parameters())
        M = cfg.check_micro_batches
        for name in SCHEDULES:
            where = f"{name}, K={world}, M={M}, {backend}"
            last = outs[-1][name]
            ctx.assert_close(
                last["logits"], logits.detach(), name="pipelined outputs = single-stage outputs", where=where
            )
            mean_loss = torch.tensor(sum(last["losses"]) / len(last["losses"]))
            ctx.assert_close(mean_loss, loss.detach(), name="mean micro-batch loss = full-batch loss", where=where)
            seen = [n for out in outs for n in out[name]["grads"]]
            ctx.expect(
                sorted(seen) == sorted(ref),
                f"{where}: the stages hold {sorted(seen)}, the model {sorted(ref)}",
                name="stages partition the parameters",
            )
            for rank, out in enumerate(outs):
                for n, g in out[name]["grads"].items():
                    ctx.assert_close(
                        g,
                        ref[n].grad,
                        name="pipelined gradients = single-stage gradients",
                        where=f"{where}, stage {rank}, {n}",
                    )
            want = simulate(world, M, name)["in_flight"]
            got = [out[name]["in_flight"] for out in outs]
            ctx.expect(
                got == want,
                f"{where}: micro-batches in flight per stage {got}, the {name} schedule holds {want}",
                name="activations in flight per stage",
            )

    def bench(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        backend = self._backend(ctx)
        if backend is None:
            ctx.skip_part("pipeline on GPUs", f"needs 2 GPUs for NCCL, found {torch.cuda.device_count()}")
            return
        outs = launch(bench_rank, world, args=(cfg, ctx.rng_seed, self.schedules), backend=backend, timeout_s=500)
        rows, rate = [], {}
        for name in self.schedules:
            xs, measured = [], []
            for micro in cfg.micro_batches:
                key = f"{name},M={micro}"
                if key not in outs[0]:
                    ctx.skip_part(f"{name} at M={micro}", f"torch's Schedule1F1B needs M >= K = {world} micro-batches")
                    continue
                wall = [max(w) for w in zip(*(o[key]["wall"] for o in outs))]  # a step ends with its slowest stage
                idle = [1 - b / w for o in outs for b, w in zip(o[key]["busy"], wall)]
                label = f"M={micro},K={world},{backend},{cfg.label()}"
                m = record_samples(
                    ctx, name, wall, config=label, items=cfg.batch, mode=f"wall-clock in rank, {backend}"
                )
                bubble = statistics.median(idle)
                rate[key] = cfg.batch / (m.median_ms / 1e3)
                if (name, micro) in BUBBLES:
                    ctx.metric(f"bubble_{name}_m{micro}", bubble)
                xs.append(micro)
                measured.append(bubble)
                rows.append(
                    {
                        "schedule": name,
                        "M": micro,
                        "samples_per_s": round(rate[key], 1),
                        "bubble_measured": round(bubble, 3),
                        "bubble_formula": round(self.bubble(world, micro), 3),
                    }
                )
            ctx.curve(
                "bubble vs micro-batches",
                xs,
                measured,
                x_label="micro-batches M",
                y_label="idle share of a step",
                series=f"{name} measured",
            )
            ctx.curve(
                "samples/s vs micro-batches",
                xs,
                [rate[f"{name},M={m}"] for m in xs],
                x_label="micro-batches M",
                y_label="samples/s",
                series=name,
            )
        ctx.curve(
            "bubble vs micro-batches",
            list(cfg.micro_batches),
            [self.bubble(world, m) for m in cfg.micro_batches],
            x_label="micro-batches M",
            y_label="idle share of a step",
            series="(K-1)/(M+K-1)",
        )
        if "gpipe,M=1" in rate and "gpipe,M=8" in rate:
            ctx.metric("gpipe_speedup_m8", rate["gpipe,M=8"] / rate["gpipe,M=1"])
            drop = ctx.record.metrics["bubble_gpipe_m1"] - ctx.record.metrics["bubble_gpipe_m8"]
            ctx.metric("bubble_drop_gpipe_m8", drop)
        ctx.table("throughput and bubble per schedule and M", rows)
