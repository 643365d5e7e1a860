"""m5 A 300M-parameter model with optimizer sharding.

Compared: Adam on a causal Transformer LM (``kernels.pipelining.pipeline.StagedLM``) trained
data-parallel on 2 processes (gloo on CPU, NCCL with a GPU per rank), three ways, against
one process taking the same steps on the whole batch:

* ``adam``: DDP + ``torch.optim.Adam``: every rank holds all of Adam's state;
* ``zero1``: DDP + ``torch.distributed.optim.ZeroRedundancyOptimizer`` (ZeRO stage 1):
  each rank keeps Adam's state for whole parameters assigned to it (largest first, to the
  least-loaded rank), updates those and broadcasts them to the others;
* ``fsdp2``: ``torch.distributed.fsdp.fully_shard`` on every block and the root (ZeRO stage
  3): each rank keeps 1/W of every parameter's rows, its gradient and its Adam state, and
  all-gathers the rows for each forward and backward.

Check (W = 2, a few steps): ZeRO-1 and FSDP2 weights equal unsharded Adam's on every rank,
and FSDP2's first gradients are the single-process rows ``torch.chunk(g, W)[rank]``; ZeRO-1's
per-rank optimizer-state bytes sum to Adam's, the largest at most total/W + the largest
parameter's state (the greedy partition's bound), FSDP2's are its rows'; the state
consolidated on rank 0 equals Adam's and, loaded into a fresh model, takes the next step as
the uninterrupted run does; with bf16 weights and ``kernels.sharding.zero.MasterAdam`` (fp32
master, momentum, variance) the bytes per parameter are ZeRO's 2 + 2 + 12 = 16 unsharded,
2 + 2 + 12/W per ZeRO-1 rank.

Bench: step time and each rank's parameter, gradient and optimizer-state bytes per variant,
the bytes per parameter beside ZeRO's formula (fp32 here: 4 + 4 + 8, the fp32 weight being
Adam's master). The ``gpu`` preset is the catalogue's 300M-parameter model (307,032,064
parameters: E 1024, 24 blocks, V 2048); ``cpu`` 20,907,520 (E 384, 10 blocks, V 4096).

Lesson: for a model of Psi parameters, mixed-precision Adam keeps 16 Psi bytes of model
states, 12 Psi of them optimizer state (Rajbhandari et al. 2020, "ZeRO", SC20, section 3.1:
a 1.5B-parameter GPT-2 needs 24 GB before any activation). Sharding the optimizer state
(stage 1) cuts a rank to 4 Psi + 12 Psi/N_d, at no extra communication: the paper's figure
1 gives 7.5B parameters on 64 GPUs 120 GB -> 31.4 GB per GPU. Stage 3 (FSDP) divides all
16 Psi by N_d (1.9 GB there) and pays 1.5x DDP's communication volume (section 7) for
gathering the weights each pass. The sharded optimizer is only right if each rank's updated
weights reach the others: ZeRO-1 broadcasts them after every step (the mutant that skips it
drifts apart from the first step), FSDP2 all-gathers them at the next forward.
"""

from __future__ import annotations

import copy
import statistics

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer

from harness import System, task
from harness.claims import metric
from harness.launch import launch, resolve_backend
from harness.mutants import Mutant
from harness.train import record_samples
from kernels.pipelining.pipeline import lm_loss
from kernels.sharding.ranks import ZeroConfig, batch, bench_rank, check_rank
from kernels.sharding.wrong import ZeroAllOnRankZero, ZeroSkipsBroadcast
from kernels.sharding.zero import (
    bytes_rows,
    largest_state_share,
    model_bytes,
    state_bytes,
    unsharded_bytes,
    zero_bytes_per_param,
)

VARIANT_STAGE = {"adam": 0, "zero1": 1, "fsdp2": 3}


@task("m5.zero_sharding", seed="m5", title="a 300M-parameter model with optimizer sharding")
class ZeroShardingTask(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL ranks when 2 GPUs are present; one GPU: the check runs on CPU ranks (gloo)
    time_limit_s = {"check": 300.0, "bench": 1200.0}  # two spawned ranks start slowly on a busy machine
    variants = ("adam", "zero1", "fsdp2")
    sizes = {
        "tiny": ZeroConfig(d_model=32, n_layers=2, vocab=64),
        "cpu": ZeroConfig(d_model=384, n_layers=10, vocab=4096, batch=4, seq_len=32, lr=1e-3, bench_steps=5),
        "gpu": ZeroConfig(1024, 24, 2048, batch=16, seq_len=512, n_heads=16, lr=1e-4, bench_steps=10, warmup=3),
    }
    metrics = {
        "zero1_state_share": "largest ZeRO-1 rank's share of Adam's state at W=2 (0..1)",
        **{
            f"{v}_bytes_per_param": f"model-state bytes per parameter on the fullest {v} rank, fp32"
            for v in VARIANT_STAGE
        },
        "mixed_bytes_per_param": "model-state bytes per parameter, unsharded mixed-precision Adam (bf16, fp32 master)",
    }
    claims = (
        metric("zero1_state_share", "<=", 0.6, text="at W=2 the fullest ZeRO-1 rank holds <= 60 % of Adam's state"),
        metric("fsdp2_bytes_per_param", "<=", 8.5, text="FSDP2 keeps <= 8.5 bytes per parameter per rank at W=2"),
        metric("mixed_bytes_per_param", "<=", 16.0, text="mixed-precision Adam keeps 16 bytes per parameter (2+2+12)"),
    )
    #: the sharded optimizer (a class: ranks import it by reference)
    zero_cls = ZeroRedundancyOptimizer
    #: whether FSDP2 reduce-scatters gradients each backward (False: accumulation mode left on)
    fsdp_sync = True
    mutants = (
        Mutant(
            "zero_skips_broadcast",
            "ZeRO-1 never broadcasts updated parameters",
            {"zero_cls": ZeroSkipsBroadcast},
            match="ZeRO-1 weights",
        ),
        Mutant(
            "zero_all_on_rank0",
            "the partition puts all optimizer state on rank 0",
            {"zero_cls": ZeroAllOnRankZero},
            match="optimizer state per rank",
        ),
        Mutant(
            "fsdp_no_gradient_sync",
            "FSDP2 with set_requires_gradient_sync(False) left on",
            {"fsdp_sync": False},
            match="FSDP2 gradient",
        ),
    )

    @classmethod
    def rank_job(cls, cfg: ZeroConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.zero_sharding``)."""
        return bench_rank, (cfg, seed, ZeroRedundancyOptimizer)

    def _backend(self, ctx) -> str | None:
        if ctx.is_cuda:
            return "nccl" if resolve_backend("auto", 2) == "nccl" else None
        return "gloo"

    def check(self, ctx) -> None:
        cfg, W = ctx.configs[0], 2
        backend = self._backend(ctx) or "gloo"  # one GPU: the math is checked on CPU ranks with gloo
        if ctx.is_cuda and backend == "gloo":
            ctx.note("fewer than 2 GPUs: the check ran on CPU ranks with gloo")
        outs = launch(
            check_rank, W, args=(cfg, ctx.rng_seed, self.zero_cls, self.fsdp_sync), backend=backend, timeout_s=240
        )
        torch.manual_seed(ctx.rng_seed)
        model = cfg.model()
        params = dict(model.named_parameters())
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
        x, y = batch(cfg, ctx.rng_seed)
        first_grads, after = {}, {}
        for step in range(cfg.steps + 1):
            opt.zero_grad(set_to_none=True)
            lm_loss(model(x), y).backward()
            first_grads = first_grads or {n: p.grad.clone() for n, p in params.items()}
            opt.step()
            after[step + 1] = {n: p.detach().clone() for n, p in params.items()}
            if step + 1 == cfg.steps:
                ref_state = copy.deepcopy(opt.state_dict())  # the next step updates the tensors in place
        for r, out in enumerate(outs):
            where = f"rank {r} of {W}, {backend}, after {cfg.steps} Adam steps"
            for n, p in after[cfg.steps].items():
                g = out["fsdp_grads"][n]
                msg = f"rank {r}, step 1: no FSDP2 gradient rows for {n} (never reduce-scattered)"
                ctx.expect(g is not None, msg, name="FSDP2 gradient on every rank (reduce-scattered)")
                want = torch.chunk(first_grads[n], W)[r]
                ctx.assert_close(
                    g, want, name="FSDP2 gradient rows = single-process rows", where=f"rank {r}, step 1, {n}"
                )
                ctx.assert_close(
                    out["zero_params"][n], p, name="ZeRO-1 weights = unsharded Adam", where=f"{where}, {n}"
                )
                ctx.assert_close(out["fsdp_full"][n], p, name="FSDP2 weights = unsharded Adam", where=f"{where}, {n}")
                rows = torch.chunk(p, W)[r]
                ctx.assert_close(
                    out["fsdp_local"][n], rows, name="FSDP2 rank holds rows chunk(p, W)[rank]", where=f"{where}, {n}"
                )
                ctx.assert_close(
                    out["resumed_params"][n],
                    after[cfg.steps + 1][n],
                    name="resumed from the consolidated state: next step = uninterrupted",
                    where=f"rank {r}, step {cfg.steps + 1}, {n}",
                )
        # consolidated state: keyed by the parameter's index, as unsharded Adam's
        got, want = outs[0]["consolidated"]["state"], ref_state["state"]
        ctx.expect(
            sorted(got) == sorted(want),
            f"consolidated state has parameters {sorted(got)}, Adam {sorted(want)}",
            name="consolidated state covers every parameter",
        )
        for i in want:
            for k in ("exp_avg", "exp_avg_sq", "step"):
                ctx.assert_close(
                    got[i][k], want[i][k], name="consolidated state = unsharded Adam's", where=f"parameter {i}, {k}"
                )
        # optimizer-state bytes: ZeRO-1 whole parameters, FSDP2 rows
        n_params = sum(p.numel() for p in params.values())
        total = state_bytes(opt)["per_param"]  # momentum and variance, not the scalar steps
        biggest = max(p.numel() for p in params.values())
        largest = total * biggest // n_params  # Adam's state bytes of the largest parameter
        zero = [o["zero_state"]["per_param"] for o in outs]
        share, bound = largest_state_share(zero, total, largest, W)
        ctx.expect(
            sum(zero) == total and share <= bound,
            f"ZeRO-1 optimizer state per rank {zero} B: sum {sum(zero)} vs Adam's {total}, "
            f"largest share {share:.3f} vs bound 1/W + largest parameter = {bound:.3f}",
            name="ZeRO-1 optimizer state per rank",
        )
        rows = [sum(8 * torch.chunk(p, W)[r].numel() for p in params.values()) for r in range(W)]
        fsdp = [o["fsdp_state"]["per_param"] for o in outs]
        ctx.expect(
            fsdp == rows,
            f"FSDP2 optimizer state per rank {fsdp} B, its rows' Adam state is {rows} B",
            name="FSDP2 optimizer state per rank = its rows",
        )
        ctx.metric("zero1_state_share", share)
        # mixed precision (bf16 weights and gradients, fp32 master/momentum/variance): ZeRO's 16 Psi
        mixed = [o["mixed"] for o in outs]
        unsharded = unsharded_bytes(mixed) / n_params
        ctx.assert_close(
            torch.tensor(unsharded),
            torch.tensor(zero_bytes_per_param(0, W)),
            name="mixed-precision bytes per parameter = ZeRO's 2 + 2 + 12",
        )
        ctx.metric("mixed_bytes_per_param", unsharded)
        for r, m in enumerate(mixed):
            per_rank, formula = model_bytes(m) / n_params, zero_bytes_per_param(1, W)
            ctx.expect(
                per_rank <= formula + 12 * biggest / n_params,
                f"rank {r}: {per_rank:.2f} bytes per parameter under ZeRO-1, "
                f"formula 2 + 2 + 12/W = {formula:.2f} (+ the largest parameter)",
                name="ZeRO-1 mixed-precision optimizer state per rank",
            )

    def bench(self, ctx) -> None:
        cfg, W = ctx.configs[0], 2
        backend = self._backend(ctx)
        if backend is None:
            ctx.skip_part("sharding on GPUs", f"needs 2 GPUs for NCCL, found {torch.cuda.device_count()}")
            return
        outs = launch(bench_rank, W, args=(cfg, ctx.rng_seed, self.zero_cls), backend=backend, timeout_s=500)
        torch.manual_seed(ctx.rng_seed)
        n_params = sum(p.numel() for p in cfg.model().parameters())
        ctx.note(f"model: {n_params:,} parameters ({cfg.label()})")
        rows = []
        for variant, stage in VARIANT_STAGE.items():
            step_ms = [max(t) for t in zip(*(o[variant]["step_ms"] for o in outs))]  # the slowest rank ends a step
            label = f"W={W},{backend},{cfg.label()}"
            record_samples(ctx, variant, step_ms, config=label, items=cfg.batch, mode=f"wall-clock in rank, {backend}")
            per_rank = [o[variant] for o in outs]
            ctx.metric(f"{variant}_bytes_per_param", max(model_bytes(b) / n_params for b in per_rank))
            formula = zero_bytes_per_param(stage, W, param=4, grad=4, k=8)
            rows += bytes_rows(variant, per_rank, n_params, formula, round(statistics.median(step_ms), 1))
        zero = [o["zero1"]["state"] for o in outs]
        ctx.metric("zero1_state_share", max(zero) / outs[0]["adam"]["state"])
        mixed = [o["mixed"] for o in outs]  # bf16 weights and gradients, ZeRO-1 sharded fp32 MasterAdam
        ctx.metric("mixed_bytes_per_param", unsharded_bytes(mixed) / n_params)
        rows += bytes_rows("zero1, bf16 + fp32 master", mixed, n_params, zero_bytes_per_param(1, W), None)
        ctx.table("model-state bytes per rank and step time", rows)
