"""Optimizer-state bytes, a mixed-precision Adam with fp32 master weights, and ZeRO's memory
formula for model states.

ZeRO (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models", SC20, section 3.1): mixed-precision Adam keeps, per parameter, an fp16/bf16 copy of
the weight (2 bytes) and of its gradient (2 bytes) and, in fp32, the master weight, momentum
and variance (K = 12 bytes): 2 + 2 + K = 16 bytes per parameter, 16 Psi for Psi parameters.
Sharding over N_d data-parallel ranks keeps per rank (section 5, figure 1):

============  =============================  ======================
stage         what is partitioned            bytes per parameter
============  =============================  ======================
0 (DDP)       nothing                        2 + 2 + K
1 (P_os)      optimizer states               2 + 2 + K / N_d
2 (P_os+g)    + gradients                    2 + (2 + K) / N_d
3 (P_os+g+p)  + parameters                   (2 + 2 + K) / N_d
============  =============================  ======================

``torch.distributed.optim.ZeroRedundancyOptimizer`` is stage 1 (whole parameters assigned
greedily, largest first, to the least-loaded rank); FSDP2's ``fully_shard`` is stage 3 (every
parameter's rows split over the ranks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

#: ZeRO stage -> (shards the parameters, the gradients, the optimizer state)
STAGES = {0: (False, False, False), 1: (False, False, True), 2: (False, True, True), 3: (True, True, True)}


def zero_bytes_per_param(stage: int, world: int, *, param: int = 2, grad: int = 2, k: int = 12) -> float:
    """Model-state bytes per parameter on one rank under ZeRO ``stage`` (table above).

    Args:
        param, grad: bytes of a parameter / gradient element (2 for fp16/bf16, 4 for fp32).
        k: optimizer-state bytes per parameter (12 for mixed-precision Adam: fp32 master,
            momentum and variance; 8 for fp32 Adam, whose fp32 weight is the master).

    Raises:
        ValueError: an unknown stage or world < 1.
    """
    if stage not in STAGES or world < 1:
        raise ValueError(f"stage must be one of {sorted(STAGES)} and world >= 1, got stage={stage}, world={world}")
    shard_p, shard_g, shard_os = STAGES[stage]
    return param / (world if shard_p else 1) + grad / (world if shard_g else 1) + k / (world if shard_os else 1)


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's piece of a DTensor (FSDP2 state), else the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def state_bytes(optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes this rank's ``optimizer`` holds: ``per_param`` (state tensors of a parameter's
    size: momentum, variance, master copy) and ``scalars`` (one-element entries such as Adam's
    ``step``, per tensor and not per parameter, so outside the K of the formula).
    """
    per, scalars = 0, 0
    for state in optimizer.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                t = _local(v)
                if v.dim() == 0:
                    scalars += t.numel() * t.element_size()
                else:
                    per += t.numel() * t.element_size()
    return {"per_param": per, "scalars": scalars}


def tensor_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of this rank's pieces of ``tensors`` (None skipped: a parameter without a gradient)."""
    return sum(_local(t).numel() * _local(t).element_size() for t in tensors if t is not None)


class MasterAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015, no weight decay) on low-precision parameters with fp32 master
    weights, as mixed-precision training keeps them (Micikevicius et al. 2018, ICLR).

    Each parameter (any float dtype, e.g. bf16) gets in ``state``: ``master`` (fp32 copy),
    ``exp_avg`` and ``exp_avg_sq`` (fp32): K = 12 bytes per parameter; ``step`` is a
    0-d tensor. ``step()`` reads ``p.grad`` in fp32, updates the master and writes it back
    rounded to ``p``'s dtype. Under ``ZeroRedundancyOptimizer(optimizer_class=MasterAdam)``
    each rank builds one over its own parameters only, so the masters are sharded too.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"MasterAdam: need lr > 0, eps > 0, 0 <= betas < 1; got {lr}, {eps}, {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None if closure is None else closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.tensor(0.0)
                    st["master"] = p.detach().float().clone()
                    st["exp_avg"] = torch.zeros_like(st["master"])
                    st["exp_avg_sq"] = torch.zeros_like(st["master"])
                st["step"] += 1
                t, g = st["step"].item(), p.grad.float()
                st["exp_avg"].lerp_(g, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(group["eps"])
                st["master"].addcdiv_(st["exp_avg"], denom, value=-group["lr"] / (1 - b1**t))
                p.copy_(st["master"])  # rounded to the parameter's dtype
        return loss


def largest_state_share(per_rank: list[int], total: int, largest: int, world: int) -> tuple[float, float]:
    """(largest rank's share of ``total``, the bound 1/W + largest/total a greedy whole-parameter
    partition guarantees: the last parameter placed on the fullest rank is at most ``largest``).
    """
    if total <= 0:
        return math.nan, math.nan
    return max(per_rank) / total, 1 / world + largest / total


def model_bytes(b: dict[str, int]) -> int:
    """One rank's model-state bytes: ``b["params"] + b["grads"] + b["state"]`` (bytes each)."""
    return b["params"] + b["grads"] + b["state"]


def unsharded_bytes(per_rank: list[dict[str, int]]) -> int:
    """Model-state bytes of the unsharded run, from ZeRO-1 ranks' byte counts (as
    :func:`model_bytes`): rank 0's parameters and gradients (every rank holds them all) plus
    every rank's optimizer-state shard."""
    return per_rank[0]["params"] + per_rank[0]["grads"] + sum(b["state"] for b in per_rank)


def bytes_rows(
    variant: str, per_rank: list[dict[str, int]], n_params: int, formula: float, step_ms: float | None
) -> list[dict]:
    """The bench table's rows for one variant, one per rank: its parameter, gradient and
    optimizer-state MiB (``per_rank[r]`` in bytes, as :func:`model_bytes`), its model-state
    bytes per parameter beside ZeRO's ``formula``, and the median step time ``step_ms`` (ms,
    None where not timed)."""
    rows = []
    for r, b in enumerate(per_rank):
        mb = {f"{k}_mb": round(b[k] / 2**20, 2) for k in ("params", "grads", "state")}
        per_param = round(model_bytes(b) / n_params, 2)
        rows.append(
            {
                "variant": variant,
                "rank": r,
                **mb,
                "bytes_per_param": per_param,
                "zero_formula": formula,
                "step_ms": step_ms,
            }
        )
    return rows
