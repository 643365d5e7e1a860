"""m2 A Transformer trained with and without gradient clipping at a high learning rate.

A small causal Transformer language model (token + position embeddings,
``nn.TransformerEncoder`` layers with a causal mask, post-LayerNorm as in Vaswani et al.
2017, a linear head) predicts the next byte of real text: the UTF-8 bytes of the Python
standard library's docstrings (``harness.data.stdlib_corpus``). Plain SGD, the same seed,
initial weights, batches and step budget for both variants:

* ``unclipped``: ``loss.backward(); opt.step()``;
* ``clipped``: ``kernels.optim.clipping.clip_grad_norm_(params, max_norm)`` between the two
  (the hand-written equal of ``torch.nn.utils.clip_grad_norm_``; Pascanu, Mikolov & Bengio
  2013): when the global gradient norm exceeds ``max_norm`` every gradient is scaled by
  max_norm / norm, so no step moves the weights by more than lr * max_norm.

The learning rate was raised until the unclipped run diverged (see the sweep below): at
lr = 3 (max_norm = 1) it does, for every seed tried.

Check (tiny model, 40 steps, lr 3): the unclipped run diverges: its loss becomes inf/NaN
or exceeds 10x its first value; the clipped run stays finite at every step and learns
(mean loss of its last 5 steps below its first loss); clipping really happened: after
every clip the global norm is at most max_norm (+1e-4 relative) and at least one step
had a pre-clip norm above max_norm. Both loss curves go into the run record (the
unclipped one up to its last finite value).

Bench: the two loss curves and the pre-clip gradient norms at the chosen rate; a
learning-rate sweep (both variants, a table of whether each diverged, at which step, and
its final loss); the step time with and without clipping (clipping adds one norm
per gradient, a stack, a norm and a scale per gradient).

Lesson (d = 64, 2 layers, T = 64, B = 16, 60 steps, max_norm 1, seed 0, float32,
``drills bench --task m2.transformer_clipping``; losses are deterministic, times from a
2-core VM shared with other jobs, OMP_NUM_THREADS=1). Measured outcome: at lr 1 neither
run diverges, but the unclipped one spikes to a loss of 16.4 (gradient norm 14) and ends
at 3.59 while the clipped one never exceeds its initial 5.72 and ends at 3.18; at lr 3 the
unclipped run passes 10x its first loss at step 5, reaches 5.7e8 at step 9 (gradient norm
1.6e8) and then NaN, while the clipped run peaks at 9.7 and ends at 3.46 nats/byte.
(Tiny check model: unclipped past 10x at step 5, clipped ends at 4.1.) The mechanism: a
post-LN Transformer has a few steps early on with large gradients; plain SGD multiplies
them by the rate, one large step pushes the logits where the next gradient is larger
still, and the run feeds on itself. Clipping bounds every step to lr x max_norm without
changing its direction, which is enough to get through those steps; it costs one norm per
gradient tensor, 72 vs 77 ms per step here (+7%, inside the measurement noise).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from kernels.optim.clipping import clip_grad_norm_, total_grad_norm


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """Model, data and training budget of the clipping experiment."""

    dim: int
    """model width (embedding size); the MLP of each layer is 4 * dim"""
    layers: int
    """Transformer encoder layers (with a causal mask)"""
    heads: int
    """attention heads per layer"""
    context: int
    """T: bytes per training sequence"""
    batch: int
    """B: sequences per step"""
    steps: int
    """optimizer steps of each run (the shared budget)"""
    lr: float = 3.0
    """plain-SGD learning rate of the experiment (chosen so the unclipped run diverges)"""
    max_norm: float = 1.0
    """global gradient-norm bound of the clipped run"""
    sweep: tuple[float, ...] = ()
    """learning rates of the sweep (bench only)"""
    corpus_bytes: int = 200_000
    """bytes of the corpus used as training text"""

    def label(self) -> str:
        return f"d={self.dim},L={self.layers},T={self.context},B={self.batch},lr={self.lr:g},max_norm={self.max_norm:g}"


class TinyLM(nn.Module):
    """Causal byte-level Transformer LM: ids (B, T) int64 in 0..255 -> logits (B, T, 256)."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self.tok = nn.Embedding(256, config.dim)
        self.pos = nn.Embedding(config.context, config.dim)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, 4 * config.dim, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.head = nn.Linear(config.dim, 256)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))  # (B, T, D)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)  # (T, T), -inf above the diagonal
        return self.head(self.blocks(x, mask=mask, is_causal=True))  # (B, T, 256)


@functools.lru_cache(maxsize=2)
def corpus_bytes(n: int) -> torch.Tensor:
    """The first ``n`` UTF-8 bytes of the standard-library docstring corpus, int64 (n,)."""
    from harness.data import stdlib_corpus

    raw = stdlib_corpus().text.encode("utf-8")[:n]
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()


@dataclasses.dataclass
class Run:
    """One training run: per-step losses (stops at the first non-finite one), global gradient
    norms before and after clipping, and where it diverged (None if it did not)."""

    losses: list[float]
    norms_before: list[float]
    norms_after: list[float]
    diverged_at: int | None


def diverged(losses: list[float]) -> int | None:
    """1-based step at which the loss became inf/NaN or exceeded 10x the first loss."""
    for i, v in enumerate(losses, 1):
        if not math.isfinite(v) or v > 10 * losses[0]:
            return i
    return None


@task("m2.transformer_clipping", seed="m2", title="Transformer with gradient clipping")
class TransformerClipping(Comparison):
    __doc__ = __doc__
    variants = ("unclipped", "clipped")
    sizes = {
        "tiny": ClipConfig(dim=32, layers=2, heads=2, context=32, batch=8, steps=40, corpus_bytes=50_000),
        "cpu": ClipConfig(dim=64, layers=2, heads=4, context=64, batch=16, steps=60, sweep=(1.0, 3.0)),
        "gpu": ClipConfig(dim=256, layers=4, heads=8, context=256, batch=64, steps=1000, sweep=(0.3, 1.0, 3.0, 10.0)),
    }
    #: the clipping function under test (tests swap in broken ones)
    clip_fn = staticmethod(clip_grad_norm_)

    def train(self, variant: str, config: ClipConfig, device, dtype, seed: int, lr: float | None = None) -> Run:
        """Train from seeded weights on a seeded batch stream; stop at the first non-finite loss."""
        data = corpus_bytes(config.corpus_bytes).to(device)
        torch.manual_seed(seed)
        model = TinyLM(config).to(device, dtype)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr if lr is None else lr)
        g = torch.Generator().manual_seed(seed)
        run = Run([], [], [], None)
        offs = torch.arange(config.context)
        for _ in range(config.steps):
            start = torch.randint(0, len(data) - config.context - 1, (config.batch, 1), generator=g)
            idx = (start + offs).to(device)  # (B, T) positions of the inputs; targets are one byte later
            loss = F.cross_entropy(model(data[idx]).flatten(0, 1), data[idx + 1].flatten())  # (B*T, 256), (B*T,)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in model.parameters()]
            if variant == "clipped":
                run.norms_before.append(float(self.clip_fn(model.parameters(), config.max_norm)))
            else:
                run.norms_before.append(float(total_grad_norm(grads)))
            run.norms_after.append(float(total_grad_norm(grads)))
            run.losses.append(loss.item())
            if not math.isfinite(run.losses[-1]):
                break
            opt.step()
        run.diverged_at = diverged(run.losses)
        return run

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        runs = {v: self.train(v, cfg, ctx.device, ctx.dtype, ctx.rng_seed) for v in self.variants}
        un, cl = runs["unclipped"], runs["clipped"]
        ctx.expect(
            un.diverged_at is not None,
            f"the unclipped run did not diverge at lr {cfg.lr} in {cfg.steps} steps (max loss "
            f"{max(un.losses):.3g}, first {un.losses[0]:.3g}): raise the learning rate",
            name="unclipped run diverges at the chosen lr",
        )
        ctx.expect(
            all(math.isfinite(v) for v in cl.losses) and len(cl.losses) == cfg.steps,
            f"the clipped run went non-finite at step {len(cl.losses)} (loss {cl.losses[-1]:.3g})",
            name="clipped run stays finite",
        )
        ctx.expect(
            cl.diverged_at is None,
            f"the clipped run exploded at step {cl.diverged_at} (loss {cl.losses[cl.diverged_at - 1]:.3g})"
            if cl.diverged_at
            else "",
            name="clipped run does not explode",
        )
        last = sum(cl.losses[-5:]) / 5
        ctx.expect(
            last < cl.losses[0],
            f"the clipped run does not learn: loss {cl.losses[0]:.3f} -> {last:.3f}",
            name="clipped run learns",
        )
        over = max(a / cfg.max_norm for a in cl.norms_after)
        ctx.expect(
            over <= 1 + 1e-4,
            f"after clipping a global norm was {over:.4g} x max_norm: not clipped",
            name="post-clip norm <= max_norm",
        )
        ctx.expect(
            max(cl.norms_before) > cfg.max_norm,
            f"no pre-clip norm exceeded max_norm {cfg.max_norm}: clipping was never active",
            name="clipping was active",
        )
        ctx.metric("unclipped.diverged_at_step", un.diverged_at or float("nan"))
        ctx.metric("clipped.final_loss_mean5", last)
        self.record(ctx, runs)

    def record(self, ctx, runs: dict[str, Run]) -> None:
        for v, r in runs.items():
            finite = [x for x in r.losses if math.isfinite(x)]
            ctx.curve(
                "train loss",
                list(range(1, len(finite) + 1)),
                finite,
                y_label="cross-entropy (nats/byte)",
                series=v,
                log_y=True,
            )
            norms = [x for x in r.norms_before if math.isfinite(x)]
            ctx.curve(
                "gradient norm before clipping",
                list(range(1, len(norms) + 1)),
                norms,
                y_label="global L2 norm",
                series=v,
                log_y=True,
            )

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ClipConfig) -> Prepared:
        data = corpus_bytes(config.corpus_bytes).to(ctx.device)
        torch.manual_seed(ctx.rng_seed)
        model = TinyLM(config).to(ctx.device, ctx.dtype)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)  # small: timing, not training
        g = torch.Generator().manual_seed(ctx.rng_seed)
        idx = (
            torch.randint(0, len(data) - config.context - 1, (config.batch, 1), generator=g)
            + torch.arange(config.context)
        ).to(ctx.device)  # (B, T)
        x, y = data[idx], data[idx + 1]

        def step():
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if impl == "clipped":
                self.clip_fn(model.parameters(), config.max_norm)
            opt.step()

        return Prepared(fn=step, items=config.batch * config.context, item_unit="tokens")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        rows, chosen = [], {}
        for lr in sorted(set(cfg.sweep) | {cfg.lr}):
            for v in self.variants:
                r = self.train(v, cfg, ctx.device, ctx.dtype, ctx.rng_seed, lr=lr)
                if lr == cfg.lr:
                    chosen[v] = r
                finite = [x for x in r.losses if math.isfinite(x)]
                rows.append(
                    {
                        "lr": lr,
                        "variant": v,
                        "diverged": r.diverged_at is not None,
                        "diverged_at_step": r.diverged_at,
                        "max_loss": float(f"{max(r.losses):.4g}"),
                        "final_loss": float(f"{finite[-1]:.4g}") if r.diverged_at is None else None,
                        "max_grad_norm": float(f"{max(r.norms_before):.4g}"),
                    }
                )
        ctx.table("learning-rate sweep", rows)
        self.record(ctx, chosen)
        ctx.metric("unclipped.diverged_at_step", chosen["unclipped"].diverged_at or float("nan"))
        ctx.metric("clipped.final_loss_mean5", sum(chosen["clipped"].losses[-5:]) / 5)
        for v in self.variants:
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
