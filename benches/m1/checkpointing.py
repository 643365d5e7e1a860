"""m1 Activation checkpointing in a deep network.

Compared, on one deep MLP (``models/mlp.py``: L hidden Linear -> ReLU -> Dropout blocks,
width W, batch B), one forward + backward of the cross-entropy loss three ways:

* ``plain`` (baseline): autograd keeps every activation until backward uses it.
* ``own_checkpoint``: ``kernels.autograd.checkpoint.checkpoint_sequential``: the layers cut into S
  segments, all but the last run under the hand-written segment-recompute
  ``autograd.Function`` (saves the segment input and the RNG state, reruns the segment in
  backward).
* ``torch_checkpoint``: ``torch.utils.checkpoint.checkpoint_sequential(use_reentrant=False)``.

Check (tiny, float32, dropout on, 3 seeds): the loss and every parameter gradient of both
checkpointed variants equal the plain network's (bit-identical: the recomputation runs the
same kernels on the same inputs with the same dropout masks); without restoring the RNG
state the recomputed dropout masks differ and the gradients must *not* match (so the RNG
restore is shown to matter); the checkpointed peak memory is below 60% of the plain one; a
segment count outside 1..len(layers) raises ValueError.

Memory is the peak of tensor bytes alive together during the step (``torch.profiler``
memory events, ``harness.train.peak_memory_mb``; on CUDA ``max_memory_allocated``), not
process RSS. Activations must dominate parameters for the saving to show, hence a narrow,
deep net with a large batch (W = 128, B = 512: activations ~25 MB, weight gradients 2 MB).

Lesson: checkpointing trades one extra forward (a third of a step's FLOPs) for memory.
With L layers in S segments the live activations are ~S stored segment inputs plus one
recomputed segment of L/S layers, smallest near S = sqrt(L) (Chen, Xu, Zhang & Guestrin
2016, "Training Deep Nets with Sublinear Memory Cost", who report O(sqrt(n)) memory for one
extra forward). The sweep marks that config ``~sqrtL``; past it more segments buy almost
nothing (the floor is the weight gradients plus one segment). The hand-written Function
should cost what torch's non-reentrant checkpoint costs: the claims say whether it does.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as tcp

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from harness.train import peak_memory_mb
from kernels.autograd import checkpoint as ck
from kernels.autograd.checkpoint import checkpoint_sequential
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """A deep MLP, its batch and the number of checkpoint segments."""

    layers: int
    """L: hidden Linear -> ReLU -> Dropout blocks (each block is 3 modules of the Sequential)"""
    width: int
    """W: features of every hidden layer (and of the input)"""
    batch: int
    """B: samples per step"""
    segments: int
    """S: chunks the Sequential is cut into; all but the last are checkpointed"""
    dropout: float = 0.1
    """dropout probability after each hidden ReLU (the recomputation must redraw the same masks)"""

    @property
    def sqrt_segments(self) -> bool:
        """True at S = round(sqrt(L)), the memory-optimal segment count the claims read."""
        return self.segments == round(math.sqrt(self.layers))

    def label(self) -> str:
        mark = "~sqrtL" if self.sqrt_segments else ""
        return f"L={self.layers},W={self.width},B={self.batch},S={self.segments}{mark}"


def _model(config: CheckpointConfig, device, dtype, seed: int) -> MLP:
    torch.manual_seed(seed)
    hidden = (config.width,) * config.layers
    return MLP(MLPConfig(config.width, hidden, out_features=10, dropout=config.dropout)).to(device, dtype)


def _batch(config: CheckpointConfig, device, dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch, config.width, generator=g, dtype=dtype)  # (B, W)
    y = torch.randint(0, 10, (config.batch,), generator=g)
    return x.to(device), y.to(device)


_TIME = "own checkpoint at S ~ sqrt(L) costs <= 2x a plain step (one extra forward)"
_VS_TORCH = "own checkpoint within 1.1x of torch's non-reentrant checkpoint at S ~ sqrt(L)"


# -- wrong checkpoints (the mutants) ------------------------------------------------------------
def _detaching_sequential(layers, segments, x, preserve_rng_state=True):
    """WRONG: detaches each segment's input, so no gradient reaches the layers before it."""
    layers = list(layers)
    if not 1 <= segments <= len(layers):
        raise ValueError("segments out of range")
    size = -(-len(layers) // segments)
    for s in range(0, len(layers), size):
        x = ck.checkpoint(torch.nn.Sequential(*layers[s : s + size]), x.detach(), preserve_rng_state=preserve_rng_state)
    return x


def _no_rng_restore(layers, segments, x, preserve_rng_state=True):
    """WRONG: ignores preserve_rng_state: the recomputation draws fresh dropout masks."""
    return ck.checkpoint_sequential(layers, segments, x, preserve_rng_state=False)


def _keeps_everything(layers, segments, x, preserve_rng_state=True):
    """WRONG: right gradients, but no checkpointing at all (the memory check must notice)."""
    if not 1 <= segments <= len(list(layers)):
        raise ValueError("segments out of range")
    return torch.nn.Sequential(*layers)(x)


@task("m1.checkpointing", seed="m1", title="activation checkpointing in a deep network")
class Checkpointing(Comparison):
    __doc__ = __doc__
    variants = ("plain", "own_checkpoint", "torch_checkpoint")
    sizes = {
        # activations (B x W = 256 x 32 floats per tensor) dominate the 16 small weight matrices
        "tiny": CheckpointConfig(layers=16, width=32, batch=256, segments=4),
        "cpu": [CheckpointConfig(layers=32, width=128, batch=512, segments=s) for s in (2, 6, 16)],
        "gpu": [CheckpointConfig(layers=96, width=1024, batch=8192, segments=s) for s in (2, 10, 32)],
    }
    metrics = {"peak_fraction": "own checkpoint's peak tensor memory / plain's at S ~ sqrt(L), ratio"}
    claims = (
        metric("peak_fraction", "<=", 0.35, text="own checkpoint at S ~ sqrt(L) keeps <= 35% of plain's peak memory"),
        time_ratio("own_checkpoint", to="plain", at_most=2.0, config="sqrtL", text=_TIME),
        time_ratio("own_checkpoint", to="torch_checkpoint", at_most=1.1, config="sqrtL", text=_VS_TORCH),
    )
    #: the hand checkpoint under test (the mutants swap in wrong ones)
    checkpoint_sequential = staticmethod(checkpoint_sequential)
    mutants = (
        Mutant(
            "detached_segment_input",
            "each segment's input is detached: earlier layers get no gradient",
            {"checkpoint_sequential": staticmethod(_detaching_sequential)},
            match="got no gradient",
        ),
        Mutant(
            "no_rng_restore",
            "the recomputation does not restore the RNG: other dropout masks",
            {"checkpoint_sequential": staticmethod(_no_rng_restore)},
            match="own_checkpoint: gradients",
        ),
        Mutant(
            "keeps_everything",
            "no checkpointing at all: right gradients, no memory saved",
            {"checkpoint_sequential": staticmethod(_keeps_everything)},
            match="is not below 60% of plain",
        ),
    )

    def forward(self, variant: str, model: MLP, x: torch.Tensor, segments: int, **kw) -> torch.Tensor:
        """Logits (B, 10) of x (B, W) through ``model.net`` (an nn.Sequential) the variant's way."""
        if variant == "plain":
            return model.net(x)
        if variant == "own_checkpoint":
            return self.checkpoint_sequential(model.net, segments, x, **kw)
        if variant == "torch_checkpoint":
            return tcp.checkpoint_sequential(model.net, segments, x, use_reentrant=False, **kw)
        raise ValueError(f"unknown variant {variant!r}; known: {self.variants}")

    def step_fn(self, variant: str, model: MLP, x, y, segments: int, **kw):
        """Zero grads, forward, backward; returns the detached loss."""

        def step():
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.forward(variant, model, x, segments, **kw), y)
            loss.backward()
            return loss.detach()

        return step

    def run(self, variant: str, config: CheckpointConfig, device, dtype, seed: int, **kw):
        """(loss, {name: grad}) of one step, with the dropout RNG seeded by ``seed``."""
        model = _model(config, device, dtype, seed)
        x, y = _batch(config, device, dtype, seed)
        torch.manual_seed(seed + 1)  # the dropout masks of the forward pass
        loss = self.step_fn(variant, model, x, y, config.segments, **kw)()
        return loss, {n: p.grad for n, p in model.named_parameters()}

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        for trial in range(3):
            seed = ctx.rng_seed + trial
            loss0, grads0 = self.run("plain", cfg, ctx.device, ctx.dtype, seed)
            for v in self.variants[1:]:
                loss, grads = self.run(v, cfg, ctx.device, ctx.dtype, seed)
                ctx.assert_close(loss, loss0, name=f"{v}: loss", where=f"seed {seed}")
                for n, g in grads.items():
                    msg = f"{v}: {n} got no gradient (seed {seed})"
                    ctx.expect(g is not None, msg, name=f"{v}: every parameter gets a gradient")
                    ctx.assert_close(g, grads0[n], name=f"{v}: gradients", where=f"{n}, seed {seed}")
        # memory: only segment inputs plus one recomputed segment are alive at a time
        peaks = {v: self._peak(ctx, v, cfg) for v in self.variants}
        for v, mb in peaks.items():
            ctx.metric(f"{v}.peak_alloc_delta_mb", mb)
        for v in self.variants[1:]:
            ctx.expect(
                peaks[v] < 0.6 * peaks["plain"],
                f"{v}: peak {peaks[v]:.2f} MB is not below 60% of plain's {peaks['plain']:.2f} MB",
                name=f"{v}: peak memory below plain",
            )
        # the RNG restore matters: recomputing with fresh dropout masks gives other gradients
        _, grads0 = self.run("plain", cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        _, grads = self.run("own_checkpoint", cfg, ctx.device, ctx.dtype, ctx.rng_seed, preserve_rng_state=False)
        diff = max((g - grads0[n]).abs().max().item() for n, g in grads.items())
        ctx.expect(
            diff > 1e-4,
            f"without the RNG restore the gradients still equal plain ones (max diff {diff:.2e}): "
            "is dropout active in the recomputed segments?",
            name="RNG restore matters",
        )
        model = _model(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        x, _ = _batch(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        ctx.expect_raises(
            ValueError,
            lambda: self.checkpoint_sequential(model.net, len(model.net) + 1, x),
            match="segments",
            name="segment count out of range rejected",
        )

    def _peak(self, ctx, variant: str, config: CheckpointConfig) -> float:
        step = self.prepare(ctx, variant, config).fn
        step()  # gradients exist: later steps free and reallocate them, as in training
        return peak_memory_mb(step, ctx.device)

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: CheckpointConfig) -> Prepared:
        model = _model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        x, y = _batch(config, ctx.device, ctx.dtype, ctx.rng_seed)
        return Prepared(fn=self.step_fn(impl, model, x, y, config.segments), items=config.batch, item_unit="samples")

    def bench(self, ctx) -> None:
        for config in ctx.configs:
            peaks = {}
            for v in self.variants:  # plain does not depend on S; timed per config for the ratios
                peaks[v] = self._peak(ctx, v, config)
                ctx.measure(v, self.prepare(ctx, v, config), config=config, peak_alloc_delta_mb=peaks[v])
            if config.sqrt_segments:
                ctx.metric("peak_fraction", peaks["own_checkpoint"] / peaks["plain"])
