"""A Transformer LM that splits into pipeline stages, a clock for a stage's busy time, and the
bubble of a pipeline schedule (formula and a step-by-step simulation).

Stages follow torchtitan's manual split: every rank builds the whole model from the same
seed, then :func:`keep_stage` deletes what is not its own (the blocks live in a ``ModuleDict``
keyed by layer index, so parameter names stay those of the full model and gradients compare
by name). The model's ``forward`` skips the parts a stage lacks: stage 0 takes token ids
(B, T) int64 and returns activations (B, T, E); the last stage takes (B, T, E) and returns
logits (B, T, V).

Bubble (GPipe, Huang et al. 2019, "GPipe: Efficient Training of Giant Neural Networks using
Pipeline Parallelism", NeurIPS; arXiv:1811.06965): with K stages of equal cost and M micro-batches,
each device idles for (K-1) of the M+K-1 forward slots and as many backward slots, so the
idle share of a step is (K-1)/(M+K-1). 1F1B (PipeDream-Flush, Narayanan et al. 2021, SC
"Efficient Large-Scale Language Model Training on GPU Clusters", section 2.2.1) has the same
bubble but keeps at most K micro-batches' activations in flight instead of M.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.transformer import Block, TransformerConfig


class StagedLM(nn.Module):
    """Causal pre-LN Transformer LM: ids (B, T) int64 -> logits (B, T, V), any part removable.

    Parts: ``tok`` and ``pos`` (embedding, (V, E) and (max_len, E)), ``blocks`` (a ModuleDict
    "0".."n_layers-1" of :class:`models.transformer.Block`), ``ln_f`` and ``head`` ((V, E) + V).
    """

    def __init__(self, config: TransformerConfig, vocab: int):
        super().__init__()
        E = config.d_model
        self.tok: nn.Embedding | None = nn.Embedding(vocab, E)
        self.pos: nn.Parameter | None = nn.Parameter(torch.randn(config.max_len, E) * 0.02)
        self.blocks = nn.ModuleDict({str(i): Block(config) for i in range(config.n_layers)})
        self.ln_f: nn.LayerNorm | None = nn.LayerNorm(E)
        self.head: nn.Linear | None = nn.Linear(E, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tok is not None and self.pos is not None:
            x = self.tok(x) + self.pos[: x.shape[1]]  # (B, T) ids -> (B, T, E)
        for block in self.blocks.values():
            x = block(x, causal=True)  # (B, T, E)
        if self.ln_f is not None and self.head is not None:
            x = self.head(self.ln_f(x))  # (B, T, V)
        return x


def stage_layers(n_layers: int, stage: int, n_stages: int) -> list[int]:
    """Block indices of ``stage``: contiguous, as even as possible (earlier stages get the extra).

    Raises:
        ValueError: fewer blocks than stages, or ``stage`` outside 0..n_stages-1.
    """
    if n_layers < n_stages:
        raise ValueError(f"{n_layers} blocks cannot fill {n_stages} stages; use n_layers >= stages")
    if not 0 <= stage < n_stages:
        raise ValueError(f"stage {stage} outside 0..{n_stages - 1}")
    bounds = [-(-i * n_layers // n_stages) for i in range(n_stages + 1)]  # ceil: earlier stages get the extra
    return list(range(bounds[stage], bounds[stage + 1]))


def keep_stage(model: StagedLM, stage: int, n_stages: int) -> StagedLM:
    """Delete (in place) every part of ``model`` outside ``stage``; returns the model."""
    keep = {str(i) for i in stage_layers(len(model.blocks), stage, n_stages)}
    for k in [k for k in model.blocks if k not in keep]:
        del model.blocks[k]
    if stage > 0:
        model.tok, model.pos = None, None
    if stage < n_stages - 1:
        model.ln_f, model.head = None, None
    return model


def split_points(n_layers: int, n_stages: int) -> list[str]:
    """FQNs where stages 1.. begin, for ``torch.distributed.pipelining.pipeline``'s split_spec."""
    return [f"blocks.{stage_layers(n_layers, s, n_stages)[0]}" for s in range(1, n_stages)]


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: logits (B, T, V), targets (B, T) int64 -> scalar."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # (B*T, V) vs (B*T,)


def gpipe_bubble(stages: int, micro_batches: int) -> float:
    """Idle share of a GPipe step, (K-1)/(M+K-1) (Huang et al. 2019, GPipe).

    Raises:
        ValueError: K < 1 or M < 1.
    """
    if stages < 1 or micro_batches < 1:
        raise ValueError(f"need K >= 1 stages and M >= 1 micro-batches, got K={stages}, M={micro_batches}")
    return (stages - 1) / (micro_batches + stages - 1)


def simulate(stages: int, micro_batches: int, schedule: str, t_fwd: float = 1.0, t_bwd: float = 2.0) -> dict:
    """Run a schedule step by step: every stage takes its actions in order, each as soon as
    its input is ready (forward m on stage s after forward m on s-1; backward m after
    backward m on s+1, or after its own forward on the last stage); communication is free.

    Args:
        schedule: ``gpipe`` (all forwards, then all backwards) or ``1f1b`` (K-s-1 warm-up
            forwards on stage s, then one forward / one backward alternating).
        t_fwd, t_bwd: time of one micro-batch's forward / backward on any stage.

    Returns:
        ``{"bubble": idle share (same on every stage), "makespan", "in_flight": per stage, the
        most micro-batches whose activations were held at once}``.
    """
    K, M = stages, micro_batches
    order = []
    for s in range(K):
        if schedule == "gpipe":
            acts = [("F", m) for m in range(M)] + [("B", m) for m in range(M)]
        elif schedule == "1f1b":
            warm = min(K - s - 1, M)
            acts = [("F", m) for m in range(warm)]
            for m in range(M - warm):
                acts += [("F", warm + m), ("B", m)]
            acts += [("B", m) for m in range(M - warm, M)]
        else:
            raise ValueError(f"unknown schedule {schedule!r}; use 'gpipe' or '1f1b'")
        order.append(acts)
    done: dict[tuple[str, int, int], float] = {}
    free, nxt, held, peak = [0.0] * K, [0] * K, [0] * K, [0] * K
    while any(nxt[s] < len(order[s]) for s in range(K)):
        progressed = False
        for s in range(K):
            if nxt[s] == len(order[s]):
                continue
            kind, m = order[s][nxt[s]]
            dep = ("F", s - 1, m) if kind == "F" else (("B", s + 1, m) if s < K - 1 else ("F", s, m))
            if (kind == "F" and s == 0) or dep in done:
                start = max(free[s], done.get(dep, 0.0) if not (kind == "F" and s == 0) else 0.0)
                free[s] = done[(kind, s, m)] = start + (t_fwd if kind == "F" else t_bwd)
                held[s] += 1 if kind == "F" else -1
                peak[s] = max(peak[s], held[s])
                nxt[s] += 1
                progressed = True
        if not progressed:
            raise RuntimeError(f"{schedule} with K={K}, M={M} deadlocks")  # a wrong action order
    makespan = max(free)
    busy = M * (t_fwd + t_bwd)
    return {"bubble": 1 - busy / makespan, "makespan": makespan, "in_flight": peak}


class StageClock:
    """Busy time and activations in flight of one pipeline stage, read around the schedule.

    :meth:`attach` wraps the stage's ``forward_one_chunk`` and ``backward_one_chunk`` (the
    compute the schedules call between their send/receive waits); :meth:`timed` wraps the
    loss function the last stage runs. ``busy_s`` sums those seconds; the rest of a step is
    waiting for a neighbour (the bubble) or for communication.
    """

    def __init__(self) -> None:
        self.busy_s, self.held, self.peak = 0.0, 0, 0

    def reset(self) -> None:
        self.busy_s, self.held, self.peak = 0.0, 0, 0

    def timed(self, fn: Callable[..., Any], delta: int = 0) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.busy_s += time.perf_counter() - t0
                self.held += delta
                self.peak = max(self.peak, self.held)

        return wrapper

    def attach(self, stage: Any) -> Any:
        """Instrument ``stage`` (a ``PipelineStage``) in place; returns it."""
        stage.forward_one_chunk = self.timed(stage.forward_one_chunk, +1)
        stage.backward_one_chunk = self.timed(stage.backward_one_chunk, -1)
        return stage


def measured_bubble(busy_ms: list[list[float]], step_ms: list[float]) -> float:
    """The idle share of a pipelined step as measured: ``busy_ms[s][i]`` is the time stage s spent
    inside its own forward, backward and loss calls in step i (:class:`StageClock`), ``step_ms[i]``
    the step's time (its slowest stage's); a stage idles for the rest. Median of
    ``1 - busy / step`` over stages and steps, in [0, 1] for consistent clocks.
    """
    return statistics.median(1 - b / w for busy in busy_ms for b, w in zip(busy, step_ms))


def table_row(schedule: str, micro_batches: int, samples_per_s: float, measured: float, formula: float) -> dict:
    """One row of m5.pipeline_parallel's throughput table, rounded for reading (samples/s to 0.1,
    bubble shares to 0.001)."""
    return {
        "schedule": schedule,
        "M": micro_batches,
        "samples_per_s": round(samples_per_s, 1),
        "bubble_measured": round(measured, 3),
        "bubble_formula": round(formula, 3),
    }
