"""m5 ResNet-50 with DDP on 4 GPUs.

Compared: one training step of ResNet-50 (``models/convnets.py``, torchvision's layout,
25,557,032 parameters, checked exactly) on a global batch of W x b images, taken by W
data-parallel ranks of b images each under ``DistributedDataParallel``, against one process
that sees the whole batch. Ranks start through torch's elastic launcher (``harness.launch``,
what torchrun runs): gloo on the CPU, NCCL when every rank has a GPU.

Check (world size 2, float64 so that rounding cannot hide a real difference):

* with synchronised batch norm (``torch.nn.SyncBatchNorm`` on NCCL; on gloo
  ``kernels.ddp.sync_bn.AllReduceBatchNorm``, the same statistics by two differentiable
  all-reduces, since SyncBatchNorm runs on GPUs only) every BN layer's running mean and
  variance after the step equal the single-process ones, and every parameter gradient on
  every rank equals the single-process gradient of the full batch;
* with plain per-rank BN the statistics are *not* the single-process ones (each rank
  normalises by its own b images): the check asserts the difference, so a run that claims
  plain BN equal is caught (mutant ``plain_bn_claimed_equal``).

The CPU presets use 32 x 32 images (the last stage then sees 1 x 1 maps: BN needs b >= 2
images per rank) and labelled synthetic tensors; the ``gpu`` preset uses 224 x 224 images,
256 per GPU and autocast as NVIDIA's recipe (bf16 here, which needs no loss scaler; their
AMP figure is fp16).

Bench: images/s at each world size for a fixed per-rank batch (weak scaling, as NVIDIA
reports it; per-rank BN, as their recipe) and the scaling efficiency ips(W) / (W ips(1)).

Lesson: DDP is exact, not approximate: the gradient all-reduce divided by W equals the
full-batch gradient because the loss is a mean of per-rank means, but only if nothing in the
forward depends on the split of the batch. Batch norm does: per-rank BN normalises with
statistics of b images instead of W b, which changes the outputs, the gradients and the
running statistics (harmless for large b, which is why NVIDIA's recipe keeps plain BN at
256 images per GPU; at small per-GPU batches SyncBN is the fix, at the price of two extra
all-reduces per BN layer in forward and backward). Throughput: NVIDIA DeepLearningExamples
(PyTorch ResNet-50 v1.5, DGX-A100, README "Training performance") report 938 img/s on one
A100 in TF32 and 2,470 img/s with AMP; 8 GPUs scale 7.72x (TF32) and 6.72x (AMP): the faster
the single GPU, the larger the share of the step that communication takes, so AMP scales
worse. Those figures are the yardstick for the ``gpu`` preset's images/s.
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
from harness.train import record_samples
from kernels.ddp import sync_bn
from kernels.ddp.resnet50 import bn_stats, grads_rank, labelled_batch, resnet50, step_times_rank, to_sync_bn
from models.convnets import ResNet, count_params

#: torchvision.models.resnet50() has 25,557,032 parameters (its model card / weights meta)
RESNET50_PARAMS = 25_557_032


@dataclasses.dataclass(frozen=True)
class ResNet50DDPConfig:
    """Images, per-rank batch and the world sizes the bench sweeps."""

    image: int
    """H = W of the square RGB images, pixels (224 for ImageNet; >= 32)"""
    batch_per_rank: int
    """b: images per rank per step (>= 2: BN needs two values per channel at 1 x 1 maps)"""
    world_sizes: tuple[int, ...] = (1, 2)
    """rank counts the bench times (the check always uses 2)"""
    steps: int = 3
    """timed steps per world size"""
    warmup: int = 1
    """untimed steps first (DDP rebuilds its buckets after the first backward)"""
    amp: bool = False
    """bf16 autocast for the bench on CUDA (ignored on CPU)"""

    def label(self) -> str:
        return f"resnet50,{self.image}px,b={self.batch_per_rank}/rank" + (",amp" if self.amp else "")


# -- wrong versions (the mutants; module level: ranks import them by reference) ---------------
def keep_plain_bn(model: torch.nn.Module) -> torch.nn.Module:
    """WRONG: leaves per-rank BatchNorm in place and calls it synchronised."""
    return model


def local_variance_bn(model: torch.nn.Module) -> torch.nn.Module:
    """WRONG: global mean, but each rank's variance around its own mean, averaged."""
    return sync_bn.convert(model, sync_bn.LocalVarianceBatchNorm)


def sum_hook(state, bucket):
    """WRONG: a DDP comm hook that sums the buckets and never divides by W."""
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


@task("m5.ddp_resnet50", seed="m5", title="ResNet-50 with DDP on 4 GPUs")
class DDPResNet50(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL ranks and AMP images/s when GPUs are present
    # launching ranks costs tens of seconds on a busy 2-core machine (spawned interpreters)
    time_limit_s = {"check": 600.0, "bench": 1800.0}
    check_dtypes = (torch.float64,)  # exact equalities: float64 keeps reduction-order noise ~1e-15
    variants = ("ddp",)
    sizes = {
        "tiny": ResNet50DDPConfig(image=32, batch_per_rank=2, world_sizes=(1, 2), steps=2),
        "cpu": ResNet50DDPConfig(image=64, batch_per_rank=8, world_sizes=(1, 2), steps=5, warmup=2),
        "gpu": ResNet50DDPConfig(image=224, batch_per_rank=256, world_sizes=(1, 2, 4, 8), steps=20, warmup=5, amp=True),
    }
    metrics = {
        **{f"images_per_s_w{w}": f"images/s of {w} rank(s), slowest rank's median step" for w in (1, 2, 4, 8)},
        **{
            f"scaling_efficiency_w{w}": f"ips({w}) / ({w} ips(1)), fixed per-rank batch (1 = perfect)"
            for w in (2, 4, 8)
        },
    }
    claims = (
        metric(
            "scaling_efficiency_w2", ">=", 0.7, text="2 ranks keep >= 70 % of linear (weak) scaling", measured_by="ddp"
        ),
        metric(
            "scaling_efficiency_w8",
            ">=",
            0.84,
            text="8 GPUs keep >= 84 % of linear scaling with AMP (NVIDIA DGX-A100: 6.72x / 8)",
            device="cuda",
            measured_by="ddp",
        ),
        metric(
            "images_per_s_w1",
            ">=",
            2000,
            text="one GPU trains >= 2,000 img/s with AMP (A100: 2,470)",
            device="cuda",
            measured_by="ddp",
        ),
    )
    #: how the ranks synchronise BN (staticmethods: ranks import them by reference)
    sync_norm = staticmethod(to_sync_bn)
    comm_hook = None
    mutants = (
        Mutant(
            "plain_bn_claimed_equal",
            "per-rank BN passed off as SyncBN",
            {"sync_norm": staticmethod(keep_plain_bn)},
            match="SyncBN statistics",
        ),
        Mutant(
            "local_variance_bn",
            "SyncBN averaging the ranks' own variances",
            {"sync_norm": staticmethod(local_variance_bn)},
            match="SyncBN statistics",
        ),
        Mutant(
            "grads_summed",
            "a comm hook that sums gradients, no / W",
            {"comm_hook": staticmethod(sum_hook)},
            match="DDP gradients",
        ),
    )

    @classmethod
    def rank_job(cls, cfg: ResNet50DDPConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.ddp_resnet50``)."""
        return step_times_rank, (cfg, seed)

    def check(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        ctx.expect(
            count_params(ResNet("resnet50")) == RESNET50_PARAMS,
            f"ResNet-50 has {count_params(ResNet('resnet50')):,} parameters, torchvision's has {RESNET50_PARAMS:,}",
            name="ResNet-50 has 25,557,032 parameters",
        )
        backend = "nccl" if ctx.is_cuda and resolve_backend("auto", world) == "nccl" else "gloo"
        if ctx.is_cuda and backend == "gloo":
            ctx.note("fewer than 2 GPUs: the DDP check ran on 2 CPU processes with gloo")
        args = (cfg, ctx.rng_seed, ctx.dtype, self.sync_norm, self.comm_hook)
        outs = launch(grads_rank, world, args=args, backend=backend, timeout_s=600)
        single = resnet50(ctx.rng_seed, ctx.dtype)
        x, y = labelled_batch(cfg, world * cfg.batch_per_rank, ctx.rng_seed, ctx.dtype)
        F.cross_entropy(single(x), y).backward()
        want = bn_stats(single)
        for rank, out in enumerate(outs):
            where = f"rank {rank} of {world}, {backend}"
            for n, s in want.items():
                ctx.assert_close(
                    out["stats_sync"][n], s, name="SyncBN statistics = single-process BN", where=f"{where}, {n}"
                )
            off = max(float((out["stats_local"][n] - s).abs().max()) for n, s in want.items())
            ctx.expect(
                off > 1e-3,
                f"{where}: per-rank BN statistics equal the single-process ones (max diff {off:.2g}): b images cannot "
                "give the statistics of W b",
                name="per-rank BN statistics differ from single-process BN",
            )
            flat, i = out["grads"], 0
            for n, p in single.named_parameters():
                got = flat[i : i + p.numel()].view_as(p)  # (numel,) slice -> the parameter's shape
                i += p.numel()
                ctx.assert_close(
                    got, p.grad, name="DDP gradients (SyncBN) = single-process gradients", where=f"{where}, {n}"
                )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        ws, ips = [], []
        for world in cfg.world_sizes:
            if ctx.is_cuda and resolve_backend("auto", world) != "nccl":
                ctx.skip_part(f"world size {world}", f"needs {world} GPUs for NCCL, found {torch.cuda.device_count()}")
                continue
            backend = "nccl" if ctx.is_cuda else "gloo"
            per_rank = launch(step_times_rank, world, args=(cfg, ctx.rng_seed), backend=backend, timeout_s=600)
            step_ms = [max(t) for t in zip(*per_rank)]  # a step ends when its slowest rank does
            items = world * cfg.batch_per_rank
            record_samples(
                ctx,
                "ddp",
                step_ms,
                config=f"W={world},{backend},{cfg.label()}",
                items=items,
                item_unit="images",
                mode=f"wall-clock in rank, {backend}",
            )
            ws.append(world)
            ips.append(items / statistics.median(step_ms) * 1e3)
            ctx.metric(f"images_per_s_w{world}", ips[-1])
            if ws[0] == 1 and world > 1:
                ctx.metric(f"scaling_efficiency_w{world}", ips[-1] / (world * ips[0]))
        if ws:
            ctx.curve("images/s vs world size", ws, ips, x_label="world size (ranks)", y_label="images/s")
