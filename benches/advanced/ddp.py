"""8.02 Distributed data parallel.

Compared: one training step of an MLP on a global batch of B samples, taken by W processes
that each see B/W of it (rank r gets rows r*B/W .. (r+1)*B/W), against one process that
sees all B. The processes are started by ``harness.launch`` the way ``torchrun`` starts
them (MASTER_ADDR/MASTER_PORT/RANK/LOCAL_RANK/WORLD_SIZE, OMP_NUM_THREADS=1, env://
rendezvous), gloo on CPU and NCCL when every rank has its own GPU. Two ways to sync:

* ``torch.nn.parallel.DistributedDataParallel``: its default comm hook all-reduces the
  gradient buckets during backward and divides by W;
* by hand: after ``backward``, ``all_reduce(SUM)`` of every ``.grad``, then ``/= W``.

Check (world size 2, gloo): every rank's averaged gradients equal the single-process
gradients of the full batch, both ways; DDP made every rank start from rank 0's parameters
(each rank seeds its model differently on purpose: DDP broadcasts at construction); each
rank's loss equals the single-process loss on its own shard, so the ranks really split the
data. Why the average: each rank's loss is a mean over B/W samples and the full-batch mean
is the mean of those W means, so the gradients are summed and divided by W; summing alone
gives W times the gradient, the same as a W-fold learning rate.

Bench: ms per optimizer step (slowest rank) at each world size for the same global batch
(strong scaling), samples/s, and scaling efficiency t(1) / (W * t(W)).

Lesson: data parallelism pays only when each rank has a core (or a GPU) of its own: on a
machine whose cores are already taken a second rank buys nothing, and the gradient
all-reduce comes on top (for large models DDP overlaps it with backward by bucketing:
Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training", VLDB). And the averaging is part of the algorithm, not a detail: without the
1/W the step is W times too large (the mutants show the check catching both forms).
"""

from __future__ import annotations

import dataclasses
import statistics

import torch
import torch.distributed as dist
import torch.nn.functional as F

from harness import System, task
from harness.claims import metric
from harness.launch import launch, resolve_backend
from harness.mutants import Mutant
from harness.rank_helpers import my_shard, rank_device, shard, wrap_ddp
from harness.train import record_samples
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class DDPConfig:
    """Model, global batch and the world sizes the bench sweeps."""

    batch: int
    """B: global batch per optimizer step; every world size must divide it"""
    in_features: int
    """input features of the MLP (random normal inputs)"""
    hidden: tuple[int, ...]
    """MLP hidden widths"""
    world_sizes: tuple[int, ...] = (1, 2)
    """process counts the bench times (the check always uses 2)"""
    steps: int = 10
    """timed optimizer steps per world size"""
    warmup: int = 3
    """untimed steps first (DDP's first backward builds its buckets)"""

    def label(self) -> str:
        return f"B={self.batch},mlp={self.in_features}-{'-'.join(map(str, self.hidden))}-10"


# -- what runs in every rank (module level: ranks import these by reference) ------------------


def _model(cfg: DDPConfig) -> MLP:
    return MLP(MLPConfig(in_features=cfg.in_features, hidden=cfg.hidden, out_features=10))


def global_batch(cfg: DDPConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same (B, in_features) inputs and (B,) labels on every rank and in the parent."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(cfg.batch, cfg.in_features, generator=g), torch.randint(0, 10, (cfg.batch,), generator=g)


def allreduce_mean(model: torch.nn.Module) -> None:
    """Average ``.grad`` over the ranks: all_reduce(SUM), then divide by the world size."""
    world = dist.get_world_size()
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world


def grads_rank(cfg: DDPConfig, seed: int, grad_sync, comm_hook) -> dict:
    """One backward both ways on this rank's shard; returns CPU tensors for the parent."""
    device, (xs, ys) = rank_device(), my_shard(*global_batch(cfg, seed))
    torch.manual_seed(seed + 1000 * dist.get_rank())  # a different init per rank: DDP must overwrite it
    ddp = wrap_ddp(_model(cfg), device)
    if comm_hook is not None:
        ddp.register_comm_hook(None, comm_hook)
    init = {n: p.detach().cpu().clone() for n, p in ddp.module.named_parameters()}
    loss = F.cross_entropy(ddp(xs), ys)
    loss.backward()
    out = {
        "ddp_init": init,
        "ddp_grads": {n: p.grad.cpu() for n, p in ddp.module.named_parameters()},
        "local_loss": loss.item(),
    }
    torch.manual_seed(seed)  # by hand nothing broadcasts: the ranks must start equal
    model = _model(cfg).to(device)
    F.cross_entropy(model(xs), ys).backward()
    grad_sync(model)
    out["manual_grads"] = {n: p.grad.cpu() for n, p in model.named_parameters()}
    return out


def step_times_rank(cfg: DDPConfig, seed: int) -> list[float]:
    """Milliseconds of each timed DDP training step on this rank."""
    import time

    device, (xs, ys) = rank_device(), my_shard(*global_batch(cfg, seed))
    torch.manual_seed(seed)
    ddp = wrap_ddp(_model(cfg), device)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(cfg.warmup + cfg.steps):
        dist.barrier()  # every rank starts the step together
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(ddp(xs), ys).backward()
        opt.step()
        sync()
        if i >= cfg.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


# -- wrong gradient syncs (the mutants; module level: ranks import them by reference) ---------
def allreduce_sum_only(model: torch.nn.Module) -> None:
    """WRONG: forgets to divide by the world size: W times the gradient."""
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def sum_hook(state, bucket):
    """WRONG: a DDP comm hook that sums the bucket across ranks and never divides."""
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def _sync(fn) -> dict:
    return {"grad_sync": staticmethod(fn)}


def _hook(fn) -> dict:
    return {"comm_hook": staticmethod(fn)}


# -- the task -------------------------------------------------------------------------------


@task("advanced.ddp", seed="8.02", title="distributed data parallel")
class DistributedDataParallelTask(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    variants = ("ddp",)
    sizes = {
        "tiny": DDPConfig(batch=16, in_features=24, hidden=(32,), steps=5, warmup=2),
        "cpu": DDPConfig(batch=256, in_features=512, hidden=(1024, 1024)),
        "gpu": DDPConfig(8192, 1024, (4096, 4096), world_sizes=(1, 2, 4, 8), steps=20, warmup=5),
    }
    metrics = {f"scaling_efficiency_w{w}": f"t(1) / ({w} t({w})), same global batch (1 = perfect)" for w in (2, 8)}
    claims = (
        metric("scaling_efficiency_w2", ">=", 0.8, text="2 ranks reach >= 80% strong-scaling efficiency"),
        metric("scaling_efficiency_w8", ">=", 0.7, text="8 GPUs reach >= 70% strong-scaling efficiency", device="cuda"),
    )
    #: how the by-hand path averages; a staticmethod so ranks import it by reference
    grad_sync = staticmethod(allreduce_mean)
    #: DDP comm hook (None: PyTorch's default all-reduce-and-divide)
    comm_hook = None
    mutants = (
        Mutant("manual_sum_only", "all_reduce(SUM), no / W", _sync(allreduce_sum_only), match="all_reduce mean"),
        Mutant("ddp_hook_sums", "a comm hook that never divides", _hook(sum_hook), match="DDP gradients"),
    )

    @classmethod
    def rank_job(cls, cfg: DDPConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist advanced.ddp``)."""
        return step_times_rank, (cfg, seed)

    def _backend(self, ctx, world: int) -> str | None:
        """nccl when the run is on CUDA with a GPU per rank, gloo on CPU; None: cannot run."""
        if ctx.is_cuda:
            return "nccl" if resolve_backend("auto", world) == "nccl" else None
        return "gloo"

    def check(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        backend = self._backend(ctx, world) or "gloo"  # one GPU: check the math on CPU with gloo
        if ctx.is_cuda and backend == "gloo":
            ctx.note("fewer than 2 GPUs: the gradient check ran on CPU processes with gloo")
        outs = launch(
            grads_rank, world, args=(cfg, ctx.rng_seed, self.grad_sync, self.comm_hook), backend=backend, timeout_s=120
        )
        torch.manual_seed(ctx.rng_seed)
        single = _model(cfg)
        init = {n: p.detach().clone() for n, p in single.named_parameters()}
        x, y = global_batch(cfg, ctx.rng_seed)
        F.cross_entropy(single(x), y).backward()
        with torch.no_grad():
            shard_loss = [F.cross_entropy(single(shard(x, r, world)), shard(y, r, world)) for r in range(world)]
        for rank, out in enumerate(outs):
            where = f"rank {rank} of {world}, {backend}"
            name = "each rank's loss is that of its own shard"
            ctx.assert_close(torch.tensor(out["local_loss"]), shard_loss[rank], name=name, where=where)
            for n, p in single.named_parameters():
                at = f"{where}, {n}"
                name = "DDP broadcasts rank 0's parameters"
                ctx.assert_close(out["ddp_init"][n], init[n], name=name, where=at, rtol=0, atol=0)
                ctx.assert_close(out["ddp_grads"][n], p.grad, name="DDP gradients = single-process gradients", where=at)
                name = "all_reduce mean gradients = single-process gradients"
                ctx.assert_close(out["manual_grads"][n], p.grad, name=name, where=at)

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        xs, ys = [], []
        for world in cfg.world_sizes:
            backend = self._backend(ctx, world)
            if backend is None:
                ctx.skip_part(f"world size {world}", f"needs {world} GPUs for NCCL, found {torch.cuda.device_count()}")
                continue
            if cfg.batch % world:
                raise ValueError(f"{cfg.label()}: world size {world} does not divide the global batch")
            per_rank = launch(step_times_rank, world, args=(cfg, ctx.rng_seed), backend=backend, timeout_s=300)
            step_ms = [max(t) for t in zip(*per_rank)]  # a step ends when its slowest rank does
            label, mode = f"W={world},{backend},{cfg.label()}", f"wall-clock in rank, {backend}"
            record_samples(ctx, "ddp", step_ms, config=label, items=cfg.batch, mode=mode)
            xs.append(world)
            ys.append(statistics.median(step_ms))
            ctx.metric(f"step_ms_w{world}", ys[-1])
            if xs[0] == 1 and world > 1:
                ctx.metric(f"scaling_efficiency_w{world}", ys[0] / (world * ys[-1]))
        if xs:
            ctx.curve("step time vs world size", xs, ys, x_label="world size (processes)", y_label="ms per step")
