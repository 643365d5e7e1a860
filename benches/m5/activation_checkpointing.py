"""m5 Activation checkpointing for large models.

Compared: one training step (forward + backward of the next-token loss) of a GPT-style
Transformer (``models/transformer.py``, n pre-LN blocks, dropout on) under four policies of
``kernels.autograd.block_checkpoint``: ``none``; ``per_block``, each block under
``torch.utils.checkpoint.checkpoint(use_reentrant=False)``; ``sqrt_segments``, round(sqrt n)
blocks per checkpoint (Chen et al.'s schedule); ``selective``, per block, keeping the matmul and
attention outputs and recomputing the element-wise ops, LayerNorms and dropouts.
(m1.checkpointing writes the recompute by hand on an MLP.)

The check holds each policy's loss and gradients to ``none``'s (bit-identical on CPU: the
recomputation restores the RNG state, so dropout draws the same masks) and its held and peak
bytes (the allocator's: ``torch.profiler`` memory events on CPU, exact; ``max_memory_allocated``
on CUDA) to what it promises. The bench sweeps the depth n: step time, held and peak MB, and the
peak's fitted exponent beside Chen's sqrt(n).

Lesson: Chen, Xu, Zhang & Guestrin 2016 ("Training Deep Nets with Sublinear Memory Cost",
arXiv:1604.06174, Sec. 3-4) store every k-th layer's output and recompute the rest in backward:
n/k stored inputs + k live layers, smallest at k = sqrt(n), for one extra forward (their
abstract: a 1,000-layer ResNet's memory from 48 GB to 7 GB for about 30 % more running time).
That assumes a layer's output costs as much as its internals. A Transformer block keeps tens of
times its input (attention probabilities, dropout masks, the 4x-wide MLP's activations): with
inputs of a bytes and internals of b bytes the peak n a / k + k b is smallest at k = sqrt(n a /
b), below 1 here, so checkpointing every block beats sqrt(n)-block segments, as large-model
trainers do (Megatron-LM's "full" recomputation per layer; Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models": *selective* recomputation of only the
attention core keeps most of the saving while cutting recomputation's time overhead by over 90
%, per their abstract). On a CPU the selective policy's dispatcher overhead can outweigh the
saving; the claims say what this machine shows.
"""

from __future__ import annotations

import math

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from kernels.autograd.block_checkpoint import POLICIES, lm_loss, torch_checkpoint
from kernels.checkpointing.activation import ActCkptConfig, loss_and_grads, model_and_ids, policy_bytes
from kernels.checkpointing.wrong import checkpoint_without_rng, detaching_checkpoint, no_checkpoint
from kernels.layers.masks import loglog_slope


def _wrong(name: str, what: str, ckpt, match: str) -> Mutant:
    """A mutant whose policies checkpoint with ``ckpt`` (from kernels.checkpointing.wrong)."""
    return Mutant(name, what, {"ckpt": staticmethod(ckpt)}, match=match)


_EVERY = "every parameter gets a gradient"
_GRADS = "gradients = no checkpointing (bit-identical on CPU)"


@task("m5.activation_checkpointing", seed="m5", title="activation checkpointing for large models")
class ActivationCheckpointing(Comparison):
    __doc__ = __doc__
    gpu_check = True  # max_memory_allocated and step times on CUDA
    variants = POLICIES
    sizes = {
        "tiny": [ActCkptConfig(layers=n, d_model=32, heads=2, seq=32, batch=4) for n in (4, 9)],
        "cpu": [ActCkptConfig(layers=n, d_model=64, heads=4, seq=64, batch=8) for n in (4, 9, 16, 25)],
        "gpu": [ActCkptConfig(layers=n, d_model=1024, heads=16, seq=1024, batch=4, vocab=8192) for n in (4, 9, 16, 25)],
    }
    metrics = {
        "peak_ratio_per_block": "peak bytes of per_block / of none at the deepest config (deterministic on CPU)",
        "peak_exponent_none": "a in peak ~ n^a over the depth sweep, no checkpointing",
        "peak_exponent_sqrt_segments": "a in peak ~ n^a over the depth sweep, sqrt(n)-block segments (Chen: 0.5)",
        "peak_exponent_per_block": "a in peak ~ n^a over the depth sweep, every block checkpointed",
    }
    claims = (
        metric("peak_ratio_per_block", "<=", 0.3, text="per-block checkpointing cuts the step's peak memory >= 3.3x"),
        metric("peak_exponent_sqrt_segments", "<=", 0.65, text="sqrt(n)-block segments: peak grows ~ n^0.5 (Chen)"),
        metric("peak_exponent_none", ">=", 0.85, text="without checkpointing the peak grows ~ linearly in n"),
        time_ratio("per_block", to="none", at_most=1.5, text="per-block recomputation costs <= 1.5x a plain step"),
    )
    #: the checkpoint function the policies call (a staticmethod: the mutants replace it)
    ckpt = staticmethod(torch_checkpoint)
    mutants = (
        _wrong("detaches", "checkpoints a detached input", detaching_checkpoint, "gradient"),
        _wrong("no_rng_restore", "recomputes dropout with fresh RNG", checkpoint_without_rng, "gradients"),
        _wrong("keeps_everything", "the wrapper never checkpoints", no_checkpoint, "memory"),
    )

    def check(self, ctx) -> None:
        # CPU kernels are deterministic: recomputation is bit-exact. CUDA's memory-efficient
        # attention backward accumulates with atomics, so two plain backwards already differ
        exact = {} if ctx.is_cuda else {"rtol": 0.0, "atol": 0.0}
        for cfg in ctx.configs:
            model, ids = model_and_ids(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
            names = [n for n, _ in model.named_parameters()]
            ref_loss, ref = loss_and_grads(model, ids, "none", ctx.rng_seed, self.ckpt)
            ref = [g.clone() for g in ref]
            mem = {}
            for policy in POLICIES:
                where = f"{policy} [{cfg.label()}]"
                if policy != "none":
                    loss, grads = loss_and_grads(model, ids, policy, ctx.rng_seed, self.ckpt)
                    missing = [n for n, g in zip(names, grads) if g is None]
                    ctx.expect(not missing, f"{where}: no gradient reached {missing[:4]}", name=_EVERY)
                    ctx.assert_close(loss, ref_loss, name="loss = no checkpointing", where=where, **exact)
                    for n, g, r in zip(names, grads, ref):
                        ctx.assert_close(g, r, name=_GRADS, where=f"{where}, {n}", **exact)
                mem[policy] = policy_bytes(model, ids, policy, ctx.device, self.ckpt)
            (h_none, p_none), (h_blk, p_blk) = mem["none"], mem["per_block"]
            at = f"[{cfg.label()}] held/peak bytes: " + ", ".join(f"{k} {h:,}/{p:,}" for k, (h, p) in mem.items())
            ctx.expect(
                h_blk < h_none / 4 and mem["sqrt_segments"][0] < h_none / 4,
                f"{at}: checkpointed policies must keep < 1/4 of none's activation memory",
                name="activation memory kept for backward drops",
            )
            ctx.expect(
                h_blk < mem["selective"][0] < h_none,
                f"{at}: selective must keep more than per_block, less than none",
                name="selective keeps the matmul outputs only (memory between per_block and none)",
            )
            ctx.expect(
                p_blk < 0.6 * p_none,
                f"{at}: per_block's peak must be < 60 % of none's",
                name="peak memory drops with per-block checkpointing",
            )

    def prepare(self, ctx, impl: str, config: ActCkptConfig) -> Prepared:
        model, ids = model_and_ids(config, ctx.device, ctx.dtype, ctx.rng_seed)

        def step() -> None:
            model.zero_grad(set_to_none=True)
            lm_loss(model, ids, impl, self.ckpt).backward()

        return Prepared(fn=step, items=config.batch * config.seq, item_unit="tokens")

    def bench(self, ctx) -> None:
        peaks: dict[str, list[float]] = {p: [] for p in POLICIES}
        ns = [c.layers for c in ctx.configs]
        for cfg in ctx.configs:
            for policy in POLICIES:
                prepared = self.prepare(ctx, policy, cfg)
                model, ids = model_and_ids(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
                held, peak = policy_bytes(model, ids, policy, ctx.device, self.ckpt)
                ctx.measure(policy, prepared, config=cfg, held_mb=held / 1e6, peak_mb=peak / 1e6)
                peaks[policy].append(peak / 1e6)
        for policy, ys in peaks.items():
            ctx.curve("peak memory vs depth", ns, ys, x_label="blocks n", y_label="peak MB", series=policy)
        ref = [peaks["sqrt_segments"][0] * math.sqrt(n / ns[0]) for n in ns]
        ctx.curve("peak memory vs depth", ns, ref, x_label="blocks n", y_label="peak MB", series="Chen: c sqrt(n)")
        ctx.metric("peak_ratio_per_block", peaks["per_block"][-1] / peaks["none"][-1])
        if len(ns) > 1:
            for policy in ("none", "sqrt_segments", "per_block"):
                ctx.metric(f"peak_exponent_{policy}", loglog_slope(ns, peaks[policy]))
