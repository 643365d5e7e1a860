"""What each rank of the pipeline-parallel task runs (module level: ranks import these by
reference), and the task's config.

Every rank builds the whole seeded model and keeps its stage (:func:`stage_of`); rank 0
feeds the token ids, the last rank the targets; the schedule classes come in as arguments,
so a task can pass a different (or a wrong) one.
"""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.distributed as dist
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, SplitPoint, pipeline

from harness.rank_helpers import rank_device
from kernels.pipelining.pipeline import StageClock, StagedLM, keep_stage, lm_loss, split_points
from models.transformer import TransformerConfig


@dataclasses.dataclass(frozen=True)
class PipeConfig:
    """Model, global batch and micro-batch counts."""

    d_model: int
    """E: features per token"""
    n_layers: int
    """Transformer blocks, split evenly over the stages"""
    seq_len: int
    """T: tokens per sequence"""
    vocab: int
    """V: vocabulary size (random token ids)"""
    batch: int
    """B: global batch per step, sequences; divisible by every M"""
    n_heads: int = 2
    """attention heads"""
    check_micro_batches: int = 4
    """M of the equality check"""
    micro_batches: tuple[int, ...] = (1, 2, 4, 8)
    """M values the bench sweeps"""
    steps: int = 5
    """timed steps per (schedule, M)"""
    warmup: int = 1
    """untimed steps first"""

    def model(self) -> StagedLM:
        c = TransformerConfig(self.d_model, self.n_heads, self.n_layers, 4 * self.d_model, self.seq_len)
        return StagedLM(c, self.vocab)

    def label(self) -> str:
        return f"B={self.batch},T={self.seq_len},E={self.d_model},L={self.n_layers}"


def batch(cfg: PipeConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, T) and next-token targets (B, T), int64, the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq_len + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def stage_of(cfg: PipeConfig, seed: int, how: str, micro: int) -> tuple[PipelineStage, torch.nn.Module]:
    """This rank's stage of the seeded model: traced by ``pipeline()`` or split by hand."""
    rank, world, device = dist.get_rank(), dist.get_world_size(), rank_device()
    torch.manual_seed(seed)
    model = cfg.model()
    if how == "traced":
        example = batch(cfg, seed)[0][: cfg.batch // micro]  # one micro-batch (B/M, T)
        spec = {fqn: SplitPoint.BEGINNING for fqn in split_points(cfg.n_layers, world)}
        pipe = pipeline(model, mb_args=(example,), split_spec=spec)
        return pipe.build_stage(rank, device), pipe.get_stage_module(rank)
    module = keep_stage(model, rank, world).to(device)
    return PipelineStage(module, rank, world, device), module


def make_schedule(stage, schedule_cls, micro: int, scale: bool, clock: StageClock):
    """``schedule_cls`` over ``micro`` micro-batches with the timed mean loss; ``scale`` is its
    ``scale_grads``: divide the accumulated gradients by M (the losses are per-micro-batch means)."""
    return schedule_cls(stage, n_microbatches=micro, loss_fn=clock.timed(lm_loss), scale_grads=scale)


def run_step(schedule, ids: torch.Tensor, targets: torch.Tensor) -> tuple:
    """One step: rank 0 feeds ids (B, T), the last rank targets (B, T); returns (the last
    stage's logits (B, T, V) or None, its per-micro-batch losses)."""
    rank, last = dist.get_rank(), dist.get_world_size() - 1
    losses: list[torch.Tensor] = []
    args = (ids,) if rank == 0 else ()
    out = schedule.step(*args, target=targets if rank == last else None, losses=losses if rank == last else None)
    return out, losses


def grads_rank(cfg: PipeConfig, seed: int, schedules: dict, scale: bool) -> dict:
    """Both front ends, one step each; CPU tensors of this rank's outputs and gradients."""
    ids, targets = (t.to(rank_device()) for t in batch(cfg, seed))
    micro, out = cfg.check_micro_batches, {}
    for name, how in (("gpipe", "traced"), ("1f1b", "manual")):
        stage, module = stage_of(cfg, seed, how, micro)
        clock = StageClock()
        clock.attach(stage)
        logits, losses = run_step(make_schedule(stage, schedules[name], micro, scale, clock), ids, targets)
        out[name] = {
            "logits": None if logits is None else logits.detach().cpu(),
            "losses": [x.item() for x in losses],
            "grads": {n: p.grad.detach().cpu() for n, p in module.named_parameters()},
            "in_flight": clock.peak,
        }
    return out


def bench_rank(cfg: PipeConfig, seed: int, schedules: dict) -> dict:
    """Per (schedule, M): each timed step's wall ms and this stage's busy ms (1F1B only for M >= K)."""
    ids, targets = (t.to(rank_device()) for t in batch(cfg, seed))
    sync = torch.cuda.synchronize if rank_device().type == "cuda" else (lambda: None)
    out = {}
    for name, schedule_cls in schedules.items():
        for micro in cfg.micro_batches:
            if schedule_cls is Schedule1F1B and micro < dist.get_world_size():
                continue  # torch's Schedule1F1B refuses M < K (its warm-up needs K micro-batches)
            stage, _ = stage_of(cfg, seed, "manual", micro)
            clock = StageClock()
            clock.attach(stage)
            schedule = make_schedule(stage, schedule_cls, micro, True, clock)
            wall, busy = [], []
            for i in range(cfg.warmup + cfg.steps):
                dist.barrier()  # every stage starts the step together
                clock.reset()
                t0 = time.perf_counter()
                run_step(schedule, ids, targets)
                sync()
                if i >= cfg.warmup:
                    wall.append((time.perf_counter() - t0) * 1e3)
                    busy.append(clock.busy_s * 1e3)
            out[f"{name},M={micro}"] = {"wall": wall, "busy": busy}
    return out


def single_stage_reference(cfg: PipeConfig, seed: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The reference: the whole model in one process from ``torch.manual_seed(seed)``, one backward
    of the mean loss on the full batch: (its parameters by name, ``.grad`` set; logits (B, T, V)
    and the loss, both detached)."""
    torch.manual_seed(seed)
    model = cfg.model()
    ids, targets = batch(cfg, seed)
    logits = model(ids)
    loss = lm_loss(logits, targets)
    loss.backward()
    return dict(model.named_parameters()), logits.detach(), loss.detach()
