"""What a data-parallel rank started by :func:`harness.launch.launch` needs: its device, its
shard of a global batch and a model wrapped in DistributedDataParallel.

Each helper reads the process group that ``launch`` initialised (``env://`` rendezvous,
``LOCAL_RANK`` set as ``torchrun`` sets it): NCCL ranks own ``cuda:LOCAL_RANK``, gloo ranks
run on the CPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank_device() -> torch.device:
    """``cuda:LOCAL_RANK`` under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device("cpu")


def shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous 1/world of the rows of ``t`` (N, ...): rows r*N/W .. (r+1)*N/W."""
    per = t.shape[0] // world
    return t[rank * per : (rank + 1) * per]


def my_shard(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """This rank's shard of each tensor, moved to :func:`rank_device`."""
    rank, world, device = dist.get_rank(), dist.get_world_size(), rank_device()
    return [shard(t, rank, world).to(device) for t in tensors]


def wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.parallel.DistributedDataParallel:
    """``model`` moved to ``device`` inside DistributedDataParallel (which broadcasts rank 0's parameters)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model.to(device), device_ids=[device.index] if device.type == "cuda" else None)
