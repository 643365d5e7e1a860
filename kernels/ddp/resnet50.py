"""ResNet-50 data-parallel ranks (m5.ddp_resnet50): one checked step, timed steps.

Module-level functions: :func:`harness.launch.launch` and torchrun ranks import them by
reference. ``cfg`` is the task's :class:`ResNet50DDPConfig`.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F

from harness.rank_helpers import my_shard, rank_device, wrap_ddp
from kernels.ddp import sync_bn
from kernels.ddp.ranks import timed
from models.convnets import ResNet


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


def labelled_batch(cfg, n: int, seed: int, dtype=torch.float32):
    """n synthetic (n, 3, H, W) images and (n,) labels in 0..999, the same in every process."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, cfg.image, cfg.image, generator=g, dtype=dtype)
    return x, torch.randint(0, 1000, (n,), generator=g)


def resnet50(seed: int, dtype: torch.dtype) -> ResNet:
    torch.manual_seed(seed)
    return ResNet("resnet50").to(dtype)


def single_process_model(cfg, world: int, seed: int, dtype: torch.dtype) -> ResNet:
    """The reference: ResNet-50 after one backward of the mean loss on the whole global batch of
    ``world * cfg.batch_per_rank`` images in one process (its gradients and BN running statistics
    are what DDP with synchronised BN must reproduce)."""
    model = resnet50(seed, dtype)
    x, y = labelled_batch(cfg, world * cfg.batch_per_rank, seed, dtype)
    F.cross_entropy(model(x), y).backward()
    return model


def to_sync_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Synchronised BN: torch's SyncBatchNorm on NCCL, the all-reduce version elsewhere."""
    if dist.get_backend() == "nccl":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return sync_bn.convert(model)


def bn_stats(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{layer.running_mean: (C,), layer.running_var: (C,)}`` of every BN layer, on the CPU."""
    return {
        n: b.detach().cpu().clone() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    }


def grads_rank(cfg, seed: int, dtype: torch.dtype, sync_norm, comm_hook) -> dict:
    """One DDP step with synced BN (gradients, BN statistics) and per-rank BN's statistics."""
    device, world = rank_device(), dist.get_world_size()
    xs, ys = my_shard(*labelled_batch(cfg, world * cfg.batch_per_rank, seed, dtype))
    model = resnet50(seed, dtype).to(device)
    plain = copy.deepcopy(model)
    with torch.no_grad():  # per-rank BN: a training-mode forward updates the running statistics
        plain(xs)
    ddp = wrap_ddp(sync_norm(model), device)
    if comm_hook is not None:
        ddp.register_comm_hook(None, comm_hook)
    F.cross_entropy(ddp(xs), ys).backward()
    return {
        "stats_local": bn_stats(plain),
        "stats_sync": bn_stats(ddp.module),
        # one flat tensor: 25.5 M values pickle faster than 161 tensors
        "grads": torch.cat([p.grad.reshape(-1) for p in ddp.module.parameters()]).cpu(),
    }


def step_times_rank(cfg, seed: int) -> list[float]:
    """Milliseconds of each timed DDP training step on this rank (SGD, channels-last, per-rank BN as
    NVIDIA's ResNet-50 recipe: at 256 images per GPU per-rank statistics are the norm)."""
    device = rank_device()
    xs, ys = (t.to(device) for t in labelled_batch(cfg, cfg.batch_per_rank, seed + dist.get_rank()))
    ddp = wrap_ddp(resnet50(seed, torch.float32).to(memory_format=torch.channels_last), device)
    xs = xs.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    amp = cfg.amp and device.type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(ddp(xs), ys)
        loss.backward()
        opt.step()

    return timed(step, cfg.steps, cfg.warmup, device)
