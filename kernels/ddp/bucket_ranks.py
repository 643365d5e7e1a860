"""DDP bucket-size ranks (m5.bucket_tuning): gradients and DDP's buckets per cap, timed steps.

Module-level functions: :func:`harness.launch.launch` and torchrun ranks import them by
reference. ``cfg`` is the task's config (``in_features``, ``hidden``, ``batch``,
``caps_mb``, ``steps``, ``warmup``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from harness.rank_helpers import my_shard, rank_device
from kernels.ddp.ranks import timed
from models.mlp import MLP, MLPConfig

#: the bench's flag combinations: name -> (gradient_as_bucket_view, static_graph)
FLAGS = {
    "default": (False, False),
    "bucket_view": (True, False),
    "static_graph": (False, True),
    "view_static": (True, True),
}


def logged_ints(ddp: DistributedDataParallel, key: str) -> list[int]:
    """A comma-separated integer field of ``ddp._get_ddp_logging_data()`` ([] when absent)."""
    return [int(v) for v in str(ddp._get_ddp_logging_data().get(key, "")).split(",") if v.strip()]


def mlp(cfg, seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_features=cfg.in_features, hidden=cfg.hidden, out_features=10))


def global_batch(cfg, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, in_features) inputs and (B,) labels, the same in every process."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(cfg.batch, cfg.in_features, generator=g), torch.randint(0, 10, (cfg.batch,), generator=g)


def single_process_model(cfg, seed: int) -> MLP:
    """The reference: the same MLP after one backward of the mean loss on the whole global batch
    in one process (its ``.grad`` are what every DDP rank must end with)."""
    model = mlp(cfg, seed)
    x, y = global_batch(cfg, seed)
    F.cross_entropy(model(x), y).backward()
    return model


def ddp_of(cfg, seed, cap, view, static, device) -> DistributedDataParallel:
    ids = [device.index] if device.type == "cuda" else None
    model = mlp(cfg, seed).to(device)
    return DistributedDataParallel(
        model, device_ids=ids, bucket_cap_mb=cap, gradient_as_bucket_view=view, static_graph=static
    )


def buckets_rank(cfg, seed: int, runs: list, comm_hook) -> list[dict]:
    """Per (cap, view, static): gradients once buckets are rebuilt (same batch), DDP's buckets, ready order."""
    device, (xs, ys) = rank_device(), my_shard(*global_batch(cfg, seed))
    out = []
    for cap, view, static in runs:
        ddp = ddp_of(cfg, seed, cap, view, static, device)
        if comm_hook is not None:
            ddp.register_comm_hook(None, comm_hook)
        # DDP rebuilds its buckets in the forward after it has seen the gradient-ready order
        # (one iteration; a static graph takes longer); the last step runs on the rebuilt ones
        for _ in range(6):
            ddp.zero_grad(set_to_none=False)
            F.cross_entropy(ddp(xs), ys).backward()
            data = ddp._get_ddp_logging_data()
            if data.get("rebuilt_bucket_sizes") and data.get("prev_iteration_grad_ready_order_indices"):
                break
        ddp.zero_grad(set_to_none=False)
        F.cross_entropy(ddp(xs), ys).backward()
        out.append(
            {
                "grads": [p.grad.detach().cpu().clone() for p in ddp.module.parameters()],
                "bucket_sizes": logged_ints(ddp, "rebuilt_bucket_sizes"),
                "ready_order": logged_ints(ddp, "prev_iteration_grad_ready_order_indices"),
            }
        )
    return out


def bench_rank(cfg, seed: int) -> dict:
    """ms per step for every (flags, cap); for the default flags also no_sync and all-reduce alone."""
    device, (xs, ys) = rank_device(), my_shard(*global_batch(cfg, seed))
    out: dict = {}
    for cap in cfg.caps_mb:
        for name, (view, static) in FLAGS.items():
            ddp = ddp_of(cfg, seed, cap, view, static, device)
            opt = torch.optim.SGD(ddp.parameters(), lr=0.01)

            def step(ddp=ddp, opt=opt):
                opt.zero_grad(set_to_none=not ddp.gradient_as_bucket_view)
                F.cross_entropy(ddp(xs), ys).backward()
                opt.step()

            out[(name, cap)] = timed(step, cfg.steps, cfg.warmup, device)
            if name == "default":
                with ddp.no_sync():
                    out[("no_sync", cap)] = timed(step, cfg.steps, 1, device)
                sizes = logged_ints(ddp, "rebuilt_bucket_sizes")
                bufs = [torch.zeros(s // 4, device=device) for s in sizes]  # float32 gradients: 4 bytes each

                def allreduce(bufs=bufs):
                    for b in bufs:
                        dist.all_reduce(b)

                out[("allreduce_only", cap)] = timed(allreduce, cfg.steps, 1, device)
    return out
