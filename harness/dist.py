"""Run a task's multi-process job under a real ``torchrun``, on one machine or several.

:func:`harness.launch.launch` starts the ranks on this machine through torch's elastic
agent. Users who outgrow one machine start the same ranks with torchrun itself, one
command per node (the exact line is in the README, "Several machines")::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m harness.dist advanced.ddp --size gpu

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; this module joins the process
group (NCCL when every local rank has a GPU, else gloo), runs the task's rank function
from ``Task.rank_job(config)`` (a classmethod returning ``(fn, args)``: the same function
``launch`` runs), and rank 0 prints the gathered per-rank results as one JSON line.

Errors: an unknown task id, a task without a multi-process job, or a run outside torchrun
print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import Any


def _jsonable(v: Any) -> Any:
    import torch

    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.dist", description=__doc__.split("\n")[0])
    p.add_argument("task", help="task id with a multi-process job, e.g. advanced.ddp")
    p.add_argument("--size", default="tiny", choices=("tiny", "cpu", "gpu"), help="size preset (first config)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print("harness.dist: RANK/WORLD_SIZE are not set; start it with torchrun (see the README)", file=sys.stderr)
        return 2
    import torch
    import torch.distributed as dist

    from harness.registry import REGISTRY, RegistryError

    try:
        cls = REGISTRY.get(args.task)
    except RegistryError as e:
        print(f"harness.dist: {e}", file=sys.stderr)
        return 2
    rank_job = getattr(cls, "rank_job", None)
    if rank_job is None:
        print(f"harness.dist: task {cls.id} has no multi-process job (no rank_job)", file=sys.stderr)
        return 2
    fn, fn_args = rank_job(cls.configs(args.size)[0], args.seed)
    local = int(os.environ.get("LOCAL_RANK", 0))
    use_nccl = torch.cuda.is_available() and torch.cuda.device_count() > local and dist.is_nccl_available()
    if use_nccl:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if use_nccl else "gloo", timeout=timedelta(minutes=10))
    try:
        value = fn(*fn_args)
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, _jsonable(value))
        if dist.get_rank() == 0:
            print(json.dumps({"task": cls.id, "world_size": dist.get_world_size(), "per_rank": gathered}))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
