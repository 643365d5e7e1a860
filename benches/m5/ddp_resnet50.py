"""m5 ResNet-50 with DDP on 4 GPUs.

Compared: one training step of ResNet-50 (``models/convnets.py``, torchvision's layout,
25,557,032 parameters) on a global batch of W x b images, taken by W ranks of b images each
under ``DistributedDataParallel`` (started as torchrun does, by ``harness.launch``: gloo on the
CPU, NCCL when every rank has a GPU), against one process that sees the whole batch.

The check (2 ranks, float64: rounding cannot hide a real difference) holds synchronised BN
(``torch.nn.SyncBatchNorm`` on NCCL; on gloo, where it does not run,
``kernels.ddp.sync_bn.AllReduceBatchNorm``: the same statistics by two differentiable
all-reduces) to the single process's running statistics and gradients, and per-rank BN to
statistics that differ. CPU presets: 32 x 32 synthetic images (BN at the last stage's 1 x 1
maps needs b >= 2); ``gpu``: 224 x 224, 256 per GPU, bf16 autocast (NVIDIA's recipe; their AMP
figure is fp16). The bench: images/s per world size at a fixed per-rank batch (weak scaling,
per-rank BN, as NVIDIA report it) and the scaling efficiency ips(W) / (W ips(1)).

Lesson: DDP is exact, not approximate: the all-reduced gradient divided by W equals the
full-batch gradient because the loss is a mean of per-rank means, but only if nothing in the
forward depends on the split of the batch. Batch norm does: per-rank BN normalises with
statistics of b images instead of W b, which changes the outputs, the gradients and the running
statistics (harmless for large b, hence plain BN at 256 images per GPU in NVIDIA's recipe; at
small per-GPU batches SyncBN is the fix, for two extra all-reduces per BN layer). NVIDIA
DeepLearningExamples (PyTorch ResNet-50 v1.5, DGX-A100, README "Training performance") report
938 img/s on one A100 in TF32 and 2,470 img/s with AMP, and 8 GPUs scaling 7.72x (TF32) and
6.72x (AMP): the faster the single GPU, the larger communication's share of the step, so AMP
scales worse.
"""

from __future__ import annotations

import torch

from harness import System, task
from harness.claims import metric
from harness.launch import launch
from harness.multirank import bench_backend, check_backend, record_slowest_rank
from harness.mutants import Mutant
from kernels.ddp.resnet50 import (
    ResNet50DDPConfig,
    bn_stats,
    grads_rank,
    single_process_model,
    step_times_rank,
    to_sync_bn,
)
from kernels.ddp.wrong import keep_plain_bn, local_variance_bn, sum_hook
from models.convnets import ResNet, count_params

#: torchvision.models.resnet50() has 25,557,032 parameters (its model card / weights meta)
RESNET50_PARAMS = 25_557_032


def _wrong_norm(name: str, what: str, convert) -> Mutant:
    """A mutant whose ranks synchronise BN with ``convert`` (module level: ranks import it)."""
    return Mutant(name, what, {"sync_norm": staticmethod(convert)}, match="SyncBN statistics")


_SUM_HOOK = {"comm_hook": staticmethod(sum_hook)}  # the ranks register kernels.ddp.wrong.sum_hook
_STATS = "SyncBN statistics = single-process BN"
_GRADS = "DDP gradients (SyncBN) = single-process gradients"
_W2 = "2 ranks keep >= 70 % of linear (weak) scaling"
_W8 = "8 GPUs keep >= 84 % of linear scaling with AMP (NVIDIA DGX-A100: 6.72x / 8)"
_W1 = "one GPU trains >= 2,000 img/s with AMP (A100: 2,470)"


@task("m5.ddp_resnet50", seed="m5", title="ResNet-50 with DDP on 4 GPUs")
class DDPResNet50(System):
    __doc__ = __doc__
    requires = ("multiproc",)
    gpu_check = True  # NCCL ranks and AMP images/s when GPUs are present
    time_limit_s = {"check": 600.0, "bench": 1800.0}  # spawned ranks start slowly on a busy 2-core machine
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
        metric("scaling_efficiency_w2", ">=", 0.7, text=_W2, measured_by="ddp"),
        metric("scaling_efficiency_w8", ">=", 0.84, text=_W8, device="cuda", measured_by="ddp"),
        metric("images_per_s_w1", ">=", 2000, text=_W1, device="cuda", measured_by="ddp"),
    )
    #: how the ranks synchronise BN (staticmethods: ranks import them by reference)
    sync_norm = staticmethod(to_sync_bn)
    comm_hook = None
    mutants = (
        _wrong_norm("plain_bn_claimed_equal", "per-rank BN passed off as SyncBN", keep_plain_bn),
        _wrong_norm("local_variance_bn", "SyncBN averaging the ranks' own variances", local_variance_bn),
        Mutant("grads_summed", "a comm hook that sums gradients, no / W", _SUM_HOOK, match="DDP gradients"),
    )

    @classmethod
    def rank_job(cls, cfg: ResNet50DDPConfig, seed: int):
        """What each rank runs under a real torchrun (``python -m harness.dist m5.ddp_resnet50``)."""
        return step_times_rank, (cfg, seed)

    def check(self, ctx) -> None:
        cfg, world = ctx.configs[0], 2
        n_params = count_params(ResNet("resnet50"))
        msg = f"ResNet-50 has {n_params:,} parameters, torchvision's has {RESNET50_PARAMS:,}"
        ctx.expect(n_params == RESNET50_PARAMS, msg, name="ResNet-50 has 25,557,032 parameters")
        backend = check_backend(ctx, world)
        args = (cfg, ctx.rng_seed, ctx.dtype, self.sync_norm, self.comm_hook)
        outs = launch(grads_rank, world, args=args, backend=backend, timeout_s=600)
        single = single_process_model(cfg, world, ctx.rng_seed, ctx.dtype)
        want = bn_stats(single)
        params = list(single.named_parameters())
        for rank, out in enumerate(outs):
            where = f"rank {rank} of {world}, {backend}"
            for n, s in want.items():
                ctx.assert_close(out["stats_sync"][n], s, name=_STATS, where=f"{where}, {n}")
            off = max(float((out["stats_local"][n] - s).abs().max()) for n, s in want.items())
            ctx.expect(
                off > 1e-3,
                f"{where}: per-rank BN statistics equal the single-process ones (max diff {off:.2g}): b images cannot "
                "give the statistics of W b",
                name="per-rank BN statistics differ from single-process BN",
            )
            # the ranks send one flat (numel,) gradient: split it back into the parameters' shapes
            for (n, p), got in zip(params, out["grads"].split([p.numel() for _, p in params])):
                ctx.assert_close(got.view_as(p), p.grad, name=_GRADS, where=f"{where}, {n}")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        ws, ips = [], []
        for world in cfg.world_sizes:
            if (backend := bench_backend(ctx, world, f"world size {world}")) is None:
                continue
            per_rank = launch(step_times_rank, world, args=(cfg, ctx.rng_seed), backend=backend, timeout_s=600)
            items = world * cfg.batch_per_rank
            label = f"W={world},{backend},{cfg.label()}"
            m = record_slowest_rank(
                ctx, "ddp", per_rank, backend=backend, config=label, items=items, item_unit="images"
            )
            ws.append(world)
            ips.append(items / m.median_ms * 1e3)
            ctx.metric(f"images_per_s_w{world}", ips[-1])
            if ws[0] == 1 and world > 1:
                ctx.metric(f"scaling_efficiency_w{world}", ips[-1] / (world * ips[0]))
        if ws:
            ctx.curve("images/s vs world size", ws, ips, x_label="world size (ranks)", y_label="images/s")
