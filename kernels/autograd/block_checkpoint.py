"""Activation-checkpointing policies for a Transformer's blocks, and the bytes they keep.

A policy decides what autograd keeps from the forward pass for the backward pass:

* ``none``: every block's intermediate tensors (attention inputs, GELU inputs, LayerNorm
  statistics...) stay alive until backward;
* ``per_block``: ``torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)``: only
  each block's input survives; the block is rerun in backward;
* ``sqrt_segments``: k = round(sqrt(n)) consecutive blocks per checkpoint: about sqrt(n)
  stored inputs plus one recomputed segment of sqrt(n) blocks at a time (Chen et al. 2016);
* ``selective``: per block, but ``create_selective_checkpoint_contexts`` keeps the outputs
  of the matmuls and attention (:data:`COMPUTE_OPS`, costly to redo) and recomputes the
  cheap element-wise ops, LayerNorms and dropouts (PyTorch docs, "torch.utils.checkpoint":
  selective activation checkpoint).

Non-reentrant checkpointing restores the RNG state before recomputing (``preserve_rng_state``),
so dropout draws the same masks twice and the gradients are bit-identical to ``none``.

Memory is counted from the allocator's events (``torch.profiler`` with ``profile_memory``
on CPU, ``torch.cuda.memory_allocated`` on CUDA): exact and, on CPU, deterministic. A
``saved_tensors_hooks`` counter cannot do it: inside a checkpointed region the innermost
hooks (checkpoint's own) win, so an outer hook never sees what the region keeps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from models.transformer import GPT

POLICIES = ("none", "per_block", "sqrt_segments", "selective")

aten = torch.ops.aten
#: ops whose outputs the selective policy keeps: matmuls and fused attention (the FLOPs)
COMPUTE_OPS = {
    aten.mm.default,
    aten.addmm.default,
    aten.bmm.default,
    aten._scaled_dot_product_flash_attention_for_cpu.default,
    aten._scaled_dot_product_efficient_attention.default,
    aten._scaled_dot_product_flash_attention.default,
    aten._scaled_dot_product_cudnn_attention.default,
}


def save_matmuls(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Selective policy: keep matmul / attention outputs, recompute everything else."""
    return CheckpointPolicy.MUST_SAVE if op in COMPUTE_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def torch_checkpoint(fn: Callable, *args, context_fn=None, **kwargs):
    """``checkpoint(fn, *args, use_reentrant=False)``, with a selective ``context_fn`` if given."""
    extra = {"context_fn": context_fn} if context_fn is not None else {}
    return checkpoint(fn, *args, use_reentrant=False, **extra, **kwargs)


def _segment(blocks, x: torch.Tensor) -> torch.Tensor:
    for b in blocks:
        x = b(x, causal=True)
    return x


def lm_loss(model: GPT, ids: torch.Tensor, policy: str, ckpt: Callable = torch_checkpoint) -> torch.Tensor:
    """Next-token cross-entropy of ``model`` on ids (B, T) with the blocks run under ``policy``.

    ``ckpt`` is the checkpoint function (``torch_checkpoint`` or a replacement with its
    signature). Raises ValueError on an unknown policy.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown checkpoint policy {policy!r}; choose one of {POLICIES}")
    dec = model.decoder
    x = dec.drop(dec.pos(dec.tok(ids), 0))  # (B, T, E)
    blocks = list(dec.blocks)
    if policy == "none":
        x = _segment(blocks, x)
    elif policy == "per_block":
        for b in blocks:
            x = ckpt(functools.partial(_segment, [b]), x)
    elif policy == "selective":
        ctx_fn = functools.partial(create_selective_checkpoint_contexts, save_matmuls)
        for b in blocks:
            x = ckpt(functools.partial(_segment, [b]), x, context_fn=ctx_fn)
    else:
        k = max(1, round(math.sqrt(len(blocks))))
        for i in range(0, len(blocks), k):
            x = ckpt(functools.partial(_segment, blocks[i : i + k]), x)
    logits = model.lm_head(dec.ln_f(x))  # (B, T, V)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def _cpu_live_trace(fn: Callable[[], object]) -> list[int]:
    """Running sum of the CPU allocator's bytes allocated during ``fn`` (+ alloc, - free), in time order."""
    from torch.profiler import ProfilerActivity, profile

    from harness.train import _quiet_profiler_stderr

    with _quiet_profiler_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live, trace = 0, []
    for e in events:
        live += e.nbytes()
        trace.append(live)
    return trace


def held_and_peak_bytes(
    fn_loss: Callable[[], torch.Tensor], params: list[torch.nn.Parameter], device: torch.device
) -> tuple[int, int]:
    """(bytes the forward leaves alive for backward, peak bytes over forward + backward).

    Both count tensor bytes allocated during the call, not the parameters; ``params``
    have their ``.grad`` set to None first, so the new gradients count in the peak (as in a
    training step after ``zero_grad(set_to_none=True)``). On CPU the forward runs twice
    (once traced alone for ``held``, once with the backward for the peak).
    """
    box: dict[str, torch.Tensor] = {}
    for p in params:
        p.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        box["loss"] = fn_loss()
        torch.cuda.synchronize(device)
        held = torch.cuda.memory_allocated(device) - start
        box.pop("loss").backward()
        torch.cuda.synchronize(device)
        return held, torch.cuda.max_memory_allocated(device) - start
    trace = _cpu_live_trace(lambda: box.__setitem__("loss", fn_loss()))
    held = trace[-1] if trace else 0  # bytes still alive when the forward returns
    box.pop("loss").backward()
    for p in params:
        p.grad = None
    peak = max(_cpu_live_trace(lambda: fn_loss().backward()), default=0)
    return held, peak
