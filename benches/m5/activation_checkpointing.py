"""m5 Activation checkpointing for large models.

Compared: one training step (forward + backward of the next-token loss) of a GPT-style
Transformer (``models/transformer.py``, n pre-LN blocks, dropout on) under four policies of
``kernels.autograd.block_checkpoint``: ``none``; ``per_block``, each block under
``torch.utils.checkpoint.checkpoint(use_reentrant=False)``; ``sqrt_segments``, round(sqrt n)
blocks per checkpoint (Chen et al.'s schedule); ``selective``, per block with
``create_selective_checkpoint_contexts`` keeping matmul and attention outputs and
recomputing the element-wise ops, LayerNorms and dropouts. (m1.checkpointing writes the
segment-recompute ``autograd.Function`` by hand on an MLP; this task uses torch's own
non-reentrant and selective machinery on Transformer blocks.)

Check (each tiny config, float32): the loss and every parameter gradient of each policy are
bit-identical to ``none`` on CPU (the recomputation reruns the same kernels with the RNG
state restored, so dropout draws the same masks; on CUDA within float32 tolerance, since the
attention backward accumulates with atomics); every parameter gets a gradient; the bytes the
forward leaves alive for backward drop (per_block and sqrt_segments below a quarter of
``none``, selective strictly between per_block and none: it keeps the matmul outputs), and
the peak of the step drops (per_block below 60 % of ``none``). Memory is the allocator's
tensor bytes allocated during the step (CPU: ``torch.profiler`` memory events, exact and
deterministic; CUDA: ``memory_allocated`` / ``max_memory_allocated``).

Bench: step time, held and peak MB of every policy over a sweep of depths n, the peak
against n beside Chen's sqrt(n) curve, and the fitted exponent of peak ~ n^a per policy.

Lesson: Chen, Xu, Zhang & Guestrin 2016 ("Training Deep Nets with Sublinear Memory Cost",
arXiv:1604.06174, Sec. 3-4) store every k-th layer's output and recompute the rest in
backward: memory n/k stored inputs + k live layers, smallest at k = sqrt(n), O(sqrt n) for
one extra forward; their abstract: a 1,000-layer ResNet's memory from 48 GB to 7 GB for
about 30 % more running time. The sqrt rule assumes a layer's output costs as much as its internals. A
Transformer block keeps tens of times its input (attention probabilities, dropout masks,
the 4x-wide MLP's activations): with stored inputs of a bytes and block internals of b bytes the peak
n a / k + k b is smallest at k = sqrt(n a / b), below 1 here, so checkpointing every block
beats sqrt(n)-block segments, which is what large-model trainers do (Megatron-LM's
"full" recomputation per layer; Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models", whose *selective* recomputation of only the
attention core keeps most of the saving while cutting recomputation's time overhead by
over 90 %, per their abstract). On a CPU the selective policy's dispatcher overhead can
outweigh the saving; the claims say what this machine shows.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from kernels.autograd.block_checkpoint import POLICIES, held_and_peak_bytes, lm_loss, torch_checkpoint
from models.transformer import GPT, TransformerConfig


@dataclasses.dataclass(frozen=True)
class ActCkptConfig:
    """A GPT-style stack and the batch of token ids it trains on."""

    layers: int
    """n: Transformer blocks"""
    d_model: int
    """E: features per token (d_ff = 4 E)"""
    heads: int
    """attention heads (E divisible by it)"""
    seq: int
    """T: tokens per sequence"""
    batch: int
    """B: sequences per step"""
    vocab: int = 64
    """V: token ids 0..V-1 (small: the logits stay a minor part of the memory)"""
    dropout: float = 0.1
    """dropout in every block: recomputation must redraw the same masks"""

    def label(self) -> str:
        return f"n={self.layers},E={self.d_model},T={self.seq},B={self.batch}"


def _model(cfg: ActCkptConfig, device, dtype, seed: int) -> GPT:
    torch.manual_seed(seed)
    tc = TransformerConfig(cfg.d_model, cfg.heads, cfg.layers, 4 * cfg.d_model, cfg.seq, cfg.dropout)
    return GPT(tc, cfg.vocab).to(device, dtype).train()


def _ids(cfg: ActCkptConfig, device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq), generator=g).to(device)  # (B, T)


def _exponent(ns: list[int], ys: list[float]) -> float:
    """Least-squares slope a of log y = a log n + c."""
    lx, ly = [math.log(n) for n in ns], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly)) / sum((x - mx) ** 2 for x in lx)


# -- wrong versions (the check must reject each) ------------------------------------------------
def detaching_checkpoint(fn, x, **kw):
    """WRONG: checkpoints a detached copy of the input: nothing before the block gets a gradient."""
    return torch_checkpoint(fn, x.detach(), **kw)


def checkpoint_without_rng(fn, x, **kw):
    """WRONG: recomputes without restoring the RNG state: dropout draws new masks in backward."""
    return torch_checkpoint(fn, x, preserve_rng_state=False, **kw)


def no_checkpoint(fn, x, context_fn=None, **kw):
    """WRONG: calls the block plainly: everything is kept, nothing is saved."""
    return fn(x)


@task("m5.activation_checkpointing", seed="m5", title="activation checkpointing for large models")
class ActivationCheckpointing(Comparison):
    __doc__ = __doc__
    gpu_check = True  # max_memory_allocated and step times on CUDA
    variants = POLICIES
    sizes = {
        "tiny": [ActCkptConfig(4, 32, 2, 32, 4), ActCkptConfig(9, 32, 2, 32, 4)],
        "cpu": [ActCkptConfig(n, 64, 4, 64, 8) for n in (4, 9, 16, 25)],
        "gpu": [ActCkptConfig(n, 1024, 16, 1024, 4, vocab=8192) for n in (4, 9, 16, 25)],
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
        Mutant(
            "detaches", "checkpoints a detached input", {"ckpt": staticmethod(detaching_checkpoint)}, match="gradient"
        ),
        Mutant(
            "no_rng_restore",
            "recomputes dropout with fresh RNG",
            {"ckpt": staticmethod(checkpoint_without_rng)},
            match="gradients",
        ),
        Mutant(
            "keeps_everything", "the wrapper never checkpoints", {"ckpt": staticmethod(no_checkpoint)}, match="memory"
        ),
    )

    def _step(self, model: GPT, ids: torch.Tensor, policy: str, seed: int) -> tuple[torch.Tensor, list]:
        torch.manual_seed(seed)  # the same dropout masks for every policy
        model.zero_grad(set_to_none=True)
        loss = lm_loss(model, ids, policy, self.ckpt)
        loss.backward()
        return loss.detach(), [p.grad for p in model.parameters()]

    def check(self, ctx) -> None:
        # CPU kernels are deterministic: recomputation is bit-exact. CUDA's memory-efficient
        # attention backward accumulates with atomics, so two plain backwards already differ
        exact = {} if ctx.is_cuda else {"rtol": 0.0, "atol": 0.0}
        for cfg in ctx.configs:
            model, ids = _model(cfg, ctx.device, ctx.dtype, ctx.rng_seed), _ids(cfg, ctx.device, ctx.rng_seed)
            names = [n for n, _ in model.named_parameters()]
            ref_loss, ref = self._step(model, ids, "none", ctx.rng_seed)
            ref = [g.clone() for g in ref]
            mem = {}
            for policy in POLICIES:
                where = f"{policy} [{cfg.label()}]"
                if policy != "none":
                    loss, grads = self._step(model, ids, policy, ctx.rng_seed)
                    missing = [n for n, g in zip(names, grads) if g is None]
                    ctx.expect(
                        not missing,
                        f"{where}: no gradient reached {missing[:4]}",
                        name="every parameter gets a gradient",
                    )
                    ctx.assert_close(loss, ref_loss, name="loss = no checkpointing", where=where, **exact)
                    for n, g, r in zip(names, grads, ref):
                        name = "gradients = no checkpointing (bit-identical on CPU)"
                        ctx.assert_close(g, r, name=name, where=f"{where}, {n}", **exact)
                fn = lambda p=policy: lm_loss(model, ids, p, self.ckpt)  # noqa: E731 - bound per policy
                mem[policy] = held_and_peak_bytes(fn, list(model.parameters()), ctx.device)
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
        model, ids = _model(config, ctx.device, ctx.dtype, ctx.rng_seed), _ids(config, ctx.device, ctx.rng_seed)

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
                model, ids = _model(cfg, ctx.device, ctx.dtype, ctx.rng_seed), _ids(cfg, ctx.device, ctx.rng_seed)
                fn = lambda p=policy: lm_loss(model, ids, p, self.ckpt)  # noqa: E731 - bound per policy
                held, peak = held_and_peak_bytes(fn, list(model.parameters()), ctx.device)
                ctx.measure(policy, prepared, config=cfg, held_mb=held / 1e6, peak_mb=peak / 1e6)
                peaks[policy].append(peak / 1e6)
        for policy, ys in peaks.items():
            ctx.curve("peak memory vs depth", ns, ys, x_label="blocks n", y_label="peak MB", series=policy)
        ref = [peaks["sqrt_segments"][0] * math.sqrt(n / ns[0]) for n in ns]
        ctx.curve("peak memory vs depth", ns, ref, x_label="blocks n", y_label="peak MB", series="Chen: c sqrt(n)")
        ctx.metric("peak_ratio_per_block", peaks["per_block"][-1] / peaks["none"][-1])
        if len(ns) > 1:
            for policy in ("none", "sqrt_segments", "per_block"):
                ctx.metric(f"peak_exponent_{policy}", _exponent(ns, peaks[policy]))
