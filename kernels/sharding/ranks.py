"""What each rank of the ZeRO/FSDP2 task runs (module level: ranks import these by reference),
and the task's config.

Every rank trains the same seeded :class:`kernels.pipelining.pipeline.StagedLM` on its own
rows of a global batch (data parallel); the optimizer class and FSDP2's gradient-sync switch
come in as arguments, so a task can pass a different (or a wrong) one.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from harness.rank_helpers import my_shard, rank_device, wrap_ddp
from kernels.pipelining.pipeline import StagedLM, lm_loss
from kernels.sharding.zero import MasterAdam, state_bytes, tensor_bytes
from models.transformer import TransformerConfig


@dataclasses.dataclass(frozen=True)
class ZeroConfig:
    """Model, global batch and steps."""

    d_model: int
    """E: features per token"""
    n_layers: int
    """Transformer blocks (each one an FSDP2 unit)"""
    vocab: int
    """V: vocabulary (random token ids); embedding and head are the largest parameters"""
    batch: int = 4
    """B: global batch per step, sequences; divisible by the world size"""
    seq_len: int = 16
    """T: tokens per sequence"""
    n_heads: int = 2
    """attention heads"""
    lr: float = 1e-2
    """Adam learning rate (large, so that a few steps move the weights visibly)"""
    eps: float = 1e-4
    """Adam's eps. Larger than the default 1e-8 on purpose: the key half of each attention's
    ``kv`` bias gets a gradient that is zero up to rounding (softmax ignores a shift common to
    every key), and Adam divides by sqrt(v) ~ |g|, turning rounding noise that differs between
    one process and two into steps of size lr with random sign; eps >> |noise| keeps those
    steps ~lr * noise / eps"""
    steps: int = 3
    """optimizer steps of the check"""
    bench_steps: int = 6
    """timed steps of the bench, per variant"""
    warmup: int = 1
    """untimed bench steps first"""

    def model(self) -> StagedLM:
        c = TransformerConfig(self.d_model, self.n_heads, self.n_layers, 4 * self.d_model, self.seq_len)
        return StagedLM(c, self.vocab)

    def label(self) -> str:
        return f"B={self.batch},T={self.seq_len},E={self.d_model},L={self.n_layers},V={self.vocab}"


def batch(cfg: ZeroConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, T) and next-token targets (B, T), int64, the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq_len + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def sharded_model(cfg: ZeroConfig, seed: int, sync: bool = True) -> StagedLM:
    """The seeded model under FSDP2: every block one ``fully_shard`` unit, the rest the root's.

    ``sync``: reduce-scatter gradients every backward (False is gradient-accumulation mode:
    each rank keeps its own unsharded gradients). ``set_gradient_divide_factor`` would be the
    way to plant a sum instead of a mean, but it reduces with ``ReduceOp.PREMUL_SUM``, which
    gloo lacks ("Cannot use ReduceOp.PREMUL_SUM with Gloo", torch 2.13).
    """
    torch.manual_seed(seed)
    model = cfg.model().to(rank_device())
    for block in model.blocks.values():
        fully_shard(block)
    fully_shard(model)
    if not sync:
        model.set_requires_gradient_sync(False)  # recurses into every unit
    return model


def _train(model, opt, xs, ys, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        lm_loss(model(xs), ys).backward()
        opt.step()


def _cpu(named) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in named}


def _cpu_tree(tree: Any) -> Any:
    """A deep copy of ``tree`` with every tensor on the CPU (the parent may compare on the CPU)."""
    return torch.utils._pytree.tree_map(lambda v: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v, tree)


def mixed_bytes(cfg: ZeroConfig, seed: int, zero_cls: type, xs: torch.Tensor, ys: torch.Tensor) -> dict[str, int]:
    """This rank's bytes of bf16 parameters, bf16 gradients and ZeRO-1 sharded ``MasterAdam``
    state (fp32 master, momentum, variance) after one step on ``xs`` (B', T') -> ``ys``.
    No gradient averaging: only the bytes are counted, so any batch will do."""
    torch.manual_seed(seed)
    low = cfg.model().to(rank_device(), torch.bfloat16)
    opt = zero_cls(low.parameters(), optimizer_class=MasterAdam, lr=cfg.lr, eps=cfg.eps)
    lm_loss(low(xs).float(), ys).backward()
    opt.step()
    return {
        "params": tensor_bytes(low.parameters()),
        "grads": tensor_bytes(p.grad for p in low.parameters()),
        "state": state_bytes(opt.optim)["per_param"],
    }


def check_rank(cfg: ZeroConfig, seed: int, zero_cls: type, sync: bool) -> dict[str, Any]:
    """ZeRO-1 (under DDP), its state-dict round trip, FSDP2, and the mixed-precision bytes."""
    rank, device = dist.get_rank(), rank_device()
    xs, ys = my_shard(*batch(cfg, seed))
    out: dict[str, Any] = {}
    torch.manual_seed(seed)
    ddp = wrap_ddp(cfg.model(), device)
    opt = zero_cls(ddp.parameters(), optimizer_class=torch.optim.Adam, lr=cfg.lr, eps=cfg.eps)
    _train(ddp, opt, xs, ys, cfg.steps)
    out["zero_params"] = _cpu(ddp.module.named_parameters())
    out["zero_state"] = state_bytes(opt.optim)
    opt.consolidate_state_dict(to=0)
    box = [opt.state_dict() if rank == 0 else None]  # only the target rank holds the whole state
    dist.broadcast_object_list(box, src=0)
    out["consolidated"] = _cpu_tree(box[0]) if rank == 0 else None
    # round trip: a fresh model and optimizer, loaded from the checkpoint, take one more step
    torch.manual_seed(seed + 1)
    resumed = cfg.model()
    resumed.load_state_dict(ddp.module.state_dict())
    ddp2 = wrap_ddp(resumed, device)
    opt2 = zero_cls(ddp2.parameters(), optimizer_class=torch.optim.Adam, lr=cfg.lr, eps=cfg.eps)
    opt2.load_state_dict(copy.deepcopy(box[0]))  # load_state_dict empties entries of the dict it gets
    _train(ddp2, opt2, xs, ys, 1)
    out["resumed_params"] = _cpu(resumed.named_parameters())

    model = sharded_model(cfg, seed, sync)
    adam = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
    lm_loss(model(xs), ys).backward()
    out["fsdp_grads"] = {
        n: None if p.grad is None else p.grad.to_local().cpu().clone() for n, p in model.named_parameters()
    }
    adam.step()
    _train(model, adam, xs, ys, cfg.steps - 1)
    out["fsdp_local"] = {n: p.to_local().detach().cpu().clone() for n, p in model.named_parameters()}
    out["fsdp_full"] = {n: p.full_tensor().detach().cpu() for n, p in model.named_parameters()}
    out["fsdp_state"] = state_bytes(adam)

    out["mixed"] = mixed_bytes(cfg, seed, zero_cls, xs, ys)
    return out


def bench_rank(cfg: ZeroConfig, seed: int, zero_cls: type) -> dict[str, Any]:
    """Per variant (``adam``: DDP + Adam, ``zero1``: DDP + ZeRO, ``fsdp2``): timed step ms and
    this rank's parameter, gradient and optimizer-state bytes after the last step; ``mixed``:
    :func:`mixed_bytes`."""
    device = rank_device()
    xs, ys = my_shard(*batch(cfg, seed))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {}
    for variant in ("adam", "zero1", "fsdp2"):
        if variant == "fsdp2":
            model = sharded_model(cfg, seed)
            opt: Any = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
        else:
            torch.manual_seed(seed)
            model = wrap_ddp(cfg.model(), device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
            if variant == "zero1":
                opt = zero_cls(model.parameters(), optimizer_class=torch.optim.Adam, lr=cfg.lr, eps=cfg.eps)
        times = []
        for i in range(cfg.warmup + cfg.bench_steps):
            dist.barrier()  # every rank starts the step together
            sync()
            t0 = time.perf_counter()
            _train(model, opt, xs, ys, 1)
            sync()
            if i >= cfg.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        inner = getattr(opt, "optim", opt)
        out[variant] = {
            "step_ms": times,
            "params": tensor_bytes(model.parameters()),
            "grads": tensor_bytes(p.grad for p in model.parameters()),
            "state": state_bytes(inner)["per_param"],
        }
        del model, opt, inner
    # bf16 is slow on CPUs without bf16 matmul units: one sequence of 2 tokens is enough to count bytes
    out["mixed"] = mixed_bytes(cfg, seed, zero_cls, xs[:1, :2], ys[:1, :2])
    return out
