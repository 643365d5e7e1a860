"""m2 A Transformer trained with and without gradient clipping at a high learning rate.

A small causal post-LN Transformer language model (``models/post_ln_lm.py``) predicts the
next byte of real text (the UTF-8 bytes of the standard library's docstrings,
``harness.data.stdlib_corpus``). Plain SGD, the same seed, initial weights, batches and
step budget for both variants:

* ``unclipped``: ``loss.backward(); opt.step()``;
* ``clipped``: ``kernels.optim.clipping.clip_grad_norm_(params, max_norm)`` between the two
  (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural
  networks"): when the global gradient norm exceeds ``max_norm`` every gradient is scaled
  by max_norm / norm, so no step moves the weights by more than lr * max_norm.

Check (tiny, 40 steps, lr 3: raised until it does): the unclipped run diverges (loss
inf/NaN or above 10x its first); the clipped run stays finite and learns; after every clip
the global norm is at most max_norm, and some pre-clip norm exceeded it.

Bench: both loss curves, pre-clip norms, a learning-rate sweep table, each step's time.

Lesson: a post-LN Transformer has a few steps early on with large gradients (Xiong et al.
2020, "On Layer Normalization in the Transformer Architecture"); plain SGD multiplies them
by the rate, one large step pushes the logits where the next gradient is larger still, and
the run feeds on itself. Clipping bounds every step to lr x max_norm without changing its
direction, which is enough to get through those steps, and costs one norm per gradient
tensor. The losses are deterministic (seeded); the claims read whether each run diverged.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from kernels.optim.clipping import clip_grad_norm_, clip_grad_value_, total_grad_norm
from models.post_ln_lm import PostLNByteLM


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


@functools.lru_cache(maxsize=2)
def corpus_bytes(n: int) -> torch.Tensor:
    """The first ``n`` UTF-8 bytes of the standard-library docstring corpus, int64 (n,)."""
    from harness.data import stdlib_corpus

    raw = stdlib_corpus().text.encode("utf-8")[:n]
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()


_NORMS = "gradient norm before clipping"


def _model(config: ClipConfig, device, dtype, seed: int) -> PostLNByteLM:
    torch.manual_seed(seed)
    return PostLNByteLM(config.dim, config.layers, config.heads, config.context).to(device, dtype)


def _batch(data: torch.Tensor, config: ClipConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (B, T) and targets (B, T), one byte later, at seeded random offsets of ``data``."""
    start = torch.randint(0, len(data) - config.context - 1, (config.batch, 1), generator=g)
    idx = (start + torch.arange(config.context)).to(data.device)  # (B, T)
    return data[idx], data[idx + 1]


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


# -- wrong clipping (the mutants) ---------------------------------------------------------------
def _no_clip(parameters, max_norm, *args, **kwargs):
    """WRONG: reports the norm but scales nothing: the 'clipped' run is not clipped."""
    return total_grad_norm([p.grad for p in parameters if p.grad is not None])


def _clip_by_value(parameters, max_norm, *args, **kwargs):
    """WRONG: clamps entries to [-max_norm, max_norm]: bounded, but the global norm still grows."""
    params = [p for p in parameters if p.grad is not None]
    before = total_grad_norm([p.grad for p in params])
    clip_grad_value_(params, max_norm)
    return before


_TINY = ClipConfig(dim=32, layers=2, heads=2, context=32, batch=8, steps=40, corpus_bytes=50_000)
_LOW_LR_SIZES = {"tiny": dataclasses.replace(_TINY, lr=0.1)}


@task("m2.transformer_clipping", seed="m2", title="Transformer with gradient clipping")
class TransformerClipping(Comparison):
    __doc__ = __doc__
    variants = ("unclipped", "clipped")
    sizes = {
        "tiny": _TINY,
        "cpu": ClipConfig(dim=64, layers=2, heads=4, context=64, batch=16, steps=60, sweep=(1.0, 3.0)),
        "gpu": ClipConfig(dim=256, layers=4, heads=8, context=256, batch=64, steps=1000, sweep=(0.3, 1.0, 3.0, 10.0)),
    }
    metrics = {
        "clipped.diverged": "1 if the clipped run diverged (loss inf/NaN or > 10x its first), else 0",
        "unclipped.diverged": "1 if the unclipped run diverged, else 0",
    }
    claims = (
        metric("clipped.diverged", "<=", 0, text="clipped to global norm 1, SGD at lr 3 does not diverge"),
        metric("unclipped.diverged", ">=", 1, text="unclipped, the same run diverges (inf/NaN or > 10x its start)"),
        time_ratio("clipped", to="unclipped", at_most=1.15, text="clipping costs <= 15% of a step"),
    )
    #: the clipping function under test (the mutants swap in wrong ones)
    clip_fn = staticmethod(clip_grad_norm_)
    mutants = (
        Mutant("no_clip", "the 'clipped' run scales nothing", {"clip_fn": staticmethod(_no_clip)}, match="clipped run"),
        Mutant("clip_by_value", "clamps entries", {"clip_fn": staticmethod(_clip_by_value)}, match="clipped run"),
        Mutant("too_low_lr", "lr 0.1: nothing to rescue", {"sizes": _LOW_LR_SIZES}, match="did not diverge"),
    )

    def train(self, variant: str, config: ClipConfig, device, dtype, seed: int, lr: float | None = None) -> Run:
        """Train from seeded weights on a seeded batch stream; stop at the first non-finite loss."""
        data, model = corpus_bytes(config.corpus_bytes).to(device), _model(config, device, dtype, seed)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr if lr is None else lr)
        g = torch.Generator().manual_seed(seed)
        run = Run([], [], [], None)
        for _ in range(config.steps):
            x, y = _batch(data, config, g)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())  # (B*T, 256), (B*T,)
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
        msg = f"the unclipped run did not diverge at lr {cfg.lr} in {cfg.steps} steps (max loss "
        msg += f"{max(un.losses):.3g}, first {un.losses[0]:.3g}): raise the learning rate"
        ctx.expect(un.diverged_at is not None, msg, name="unclipped run diverges at the chosen lr")
        msg = f"the clipped run went non-finite at step {len(cl.losses)} (loss {cl.losses[-1]:.3g})"
        finite = all(math.isfinite(v) for v in cl.losses) and len(cl.losses) == cfg.steps
        ctx.expect(finite, msg, name="clipped run stays finite")
        msg = f"the clipped run exploded at step {cl.diverged_at}"
        ctx.expect(cl.diverged_at is None, msg, name="clipped run does not explode")
        last = sum(cl.losses[-5:]) / 5
        msg = f"the clipped run does not learn: loss {cl.losses[0]:.3f} -> {last:.3f}"
        ctx.expect(last < cl.losses[0], msg, name="clipped run learns")
        over = max(a / cfg.max_norm for a in cl.norms_after)
        msg = f"after clipping a global norm was {over:.4g} x max_norm: not clipped"
        ctx.expect(over <= 1 + 1e-4, msg, name="post-clip norm <= max_norm")
        msg = f"no pre-clip norm exceeded max_norm {cfg.max_norm}: clipping was never active"
        ctx.expect(max(cl.norms_before) > cfg.max_norm, msg, name="clipping was active")
        self.record(ctx, runs)

    def record(self, ctx, runs: dict[str, Run]) -> None:
        """Curves of both runs (up to their last finite value) and the metrics the claims read."""
        for v, r in runs.items():
            for name, ys, unit in (("train loss", r.losses, "nats/byte"), (_NORMS, r.norms_before, "global L2 norm")):
                ys = [x for x in ys if math.isfinite(x)]
                ctx.curve(name, list(range(1, len(ys) + 1)), ys, y_label=unit, series=v, log_y=True)
            ctx.metric(f"{v}.diverged", float(r.diverged_at is not None))
            ctx.metric(f"{v}.diverged_at_step", r.diverged_at or float("nan"))
        ctx.metric("clipped.final_loss_mean5", sum(runs["clipped"].losses[-5:]) / 5)

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ClipConfig) -> Prepared:
        model = _model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)  # small: timing, not training
        data = corpus_bytes(config.corpus_bytes).to(ctx.device)
        x, y = _batch(data, config, torch.Generator().manual_seed(ctx.rng_seed))

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
                row = {"lr": lr, "variant": v, "diverged": r.diverged_at is not None, "diverged_at_step": r.diverged_at}
                final = float(f"{finite[-1]:.4g}") if r.diverged_at is None else None
                rows.append({**row, "max_loss": float(f"{max(r.losses):.4g}"), "final_loss": final})
                rows[-1]["max_grad_norm"] = float(f"{max(r.norms_before):.4g}")
        ctx.table("learning-rate sweep", rows)
        self.record(ctx, chosen)
        for v in self.variants:
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
