"""2.10 With vs without gradient accumulation.

Compared: one optimizer step on a global batch of B samples, same MLP, data and seed:

* ``full_batch``: one forward/backward over all B samples, ``loss = mean over B``.
* ``accumulated``: k micro-batches (``torch.tensor_split``, sizes n_i differing by at most
  one), each backward adding into ``.grad``, each micro-batch's mean loss weighted by
  n_i / B (the usual ``loss / k`` for equal micro-batches). Forgetting the weight makes the
  gradient k times too large (a silent k-fold learning rate).

Check (tiny, float32, 3 seeded trials on sklearn's 8x8 digits): per parameter, the
accumulated gradient equals the full-batch one, for even and uneven micro-batches (where
``loss / k`` would be wrong); 5 momentum-SGD steps give the same parameters both ways. With
BatchNorm the equivalence must break, and the check asserts that it does: each micro-batch
is normalised by its own mean/variance and the running statistics get k updates (exact
accumulation needs per-sample outputs independent of the batch: GroupNorm/LayerNorm).

Bench: samples/s of one optimizer step and its peak tensor memory (``peak_alloc_delta_mb``,
:func:`harness.train.peak_memory_mb`: allocator bytes, not process RSS) for several k, and
the training-loss curves of both variants for the same steps and seed (they coincide).

Lesson: accumulation buys memory, not speed: activations shrink by k, while parameters,
gradients and optimizer state do not, and k small matmuls plus k Python-level
forward/backward passes cost more than one big one (the approach of Ott et al., "Scaling
Neural Machine Translation", 2018, which accumulates to simulate large batches on few GPUs).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digits import digits_features
from harness.mutants import Mutant
from harness.train import peak_memory_mb
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class AccumConfig:
    """One global batch split into micro-batches, on an MLP over 8x8 digits (64 features)."""

    batch: int
    """B: samples per optimizer step (drawn with replacement from the 1,797 digits)"""
    micro_batches: int
    """k: micro-batches the accumulated variant splits B into"""
    hidden: tuple[int, ...] = (32,)
    """MLP hidden widths"""
    curve_steps: int = 20
    """optimizer steps of the recorded loss curves"""
    lr: float = 0.05
    """SGD learning rate (momentum 0.9) for the trajectories"""

    def label(self) -> str:
        return f"B={self.batch},k={self.micro_batches},hidden={'x'.join(map(str, self.hidden))}"


def _batch(config: AccumConfig, device, dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits_features()
    idx = torch.randint(0, x.shape[0], (config.batch,), generator=torch.Generator().manual_seed(seed))
    return x[idx].to(device, dtype), y[idx].to(device)


def _model(config: AccumConfig, device, dtype, seed: int, batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_features=64, hidden=config.hidden, out_features=10, batch_norm=batch_norm)).to(
        device, dtype
    )


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


# -- wrong versions of accumulated_backward, declared as mutants below ---------------------
def _wrong(name: str, what: str, fn, match: str) -> Mutant:
    return Mutant(name, what, {"accumulated_backward": fn}, match=match)


def _micro(x, y, k):
    return zip(torch.tensor_split(x, k), torch.tensor_split(y, k))  # (n_i, 64), (n_i,)


def _no_scale(self, model, x, y, k):
    """Sums the micro-batch mean losses: the gradient comes out k times too large."""
    model.zero_grad(set_to_none=True)
    for xb, yb in _micro(x, y, k):
        F.cross_entropy(model(xb), yb).backward()
    return torch.zeros(())


def _one_over_k(self, model, x, y, k):
    """Scales by 1/k: right for equal micro-batches, wrong when their sizes differ."""
    model.zero_grad(set_to_none=True)
    for xb, yb in _micro(x, y, k):
        (F.cross_entropy(model(xb), yb) / k).backward()
    return torch.zeros(())


def _no_zero_grad(self, model, x, y, k):
    """Never clears .grad: the previous backward's gradient is added in."""
    for xb, yb in _micro(x, y, k):
        (F.cross_entropy(model(xb), yb) * (xb.shape[0] / x.shape[0])).backward()
    return torch.zeros(())


def _secretly_full_batch(self, model, x, y, k):
    """'Accumulates' by running the whole batch at once: BatchNorm then cannot differ."""
    return self.full_batch_backward(model, x, y, 1)


@task("autograd.grad_accumulation", seed="2.10", title="with vs without gradient accumulation")
class GradAccumulation(Comparison):
    __doc__ = __doc__
    variants = ("full_batch", "accumulated")
    sizes = {
        # 48 = 4 x 12 (even) and 5 micro-batches of 10,10,10,9,9 (uneven) in the check
        "tiny": AccumConfig(batch=48, micro_batches=4),
        "cpu": [AccumConfig(1024, k, hidden=(512, 512), curve_steps=40) for k in (4, 16)],
        "gpu": [AccumConfig(16384, k, hidden=(4096, 4096), curve_steps=40) for k in (4, 16, 64)],
    }
    claims = (
        metric("peak_memory_ratio", "<=", 0.5, text="largest k: <= 0.5x the full batch's peak tensor memory"),
        speedup("full_batch", over="accumulated", at_least=1.0, text="no speed gained: full batch >= 1x largest k"),
        metric("loss_curves_max_abs_diff", "<=", 1e-4, text="the two loss curves coincide (max |diff| <= 1e-4)"),
    )
    metrics = {
        "peak_memory_ratio": "accumulated / full-batch peak tensor memory of one step at the largest k, x",
        "loss_curves_max_abs_diff": "max |loss_full - loss_accumulated| over the curve's steps, nats",
    }
    mutants = (
        _wrong("no_loss_scale", "losses summed, not weighted n_i / B (k-fold gradient)", _no_scale, "(even"),
        _wrong("one_over_k", "loss / k: wrong for uneven micro-batches", _one_over_k, "(uneven"),
        _wrong("no_zero_grad", ".grad not cleared before accumulating", _no_zero_grad, "(even"),
        _wrong("secretly_full_batch", "one pass over the whole batch", _secretly_full_batch, "BatchNorm"),
    )

    # -- the two ways to get the gradient of one global batch ----------------------------------
    def full_batch_backward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """Gradient of mean cross-entropy over x (B, 64) into ``.grad``; returns the loss."""
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()

    def accumulated_backward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """The same gradient from k micro-batches; returns the same (weighted) loss."""
        model.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for xb, yb in zip(torch.tensor_split(x, k), torch.tensor_split(y, k)):  # (n_i, 64), (n_i,)
            # weight n_i / B: micro-batch mean -> its share of the full-batch mean
            loss = F.cross_entropy(model(xb), yb) * (xb.shape[0] / x.shape[0])
            loss.backward()  # adds into .grad
            total += loss.detach()
        return total

    def backward(self, variant: str):
        return {"full_batch": self.full_batch_backward, "accumulated": self.accumulated_backward}[variant]

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        uneven = cfg.micro_batches + 1
        if cfg.batch % uneven == 0:
            raise ValueError(f"{cfg.label()}: the check needs B % (k+1) != 0 for uneven micro-batches")
        for trial in range(3):
            seed = ctx.rng_seed + trial
            x, y = _batch(cfg, ctx.device, ctx.dtype, seed)
            model = _model(cfg, ctx.device, ctx.dtype, seed)
            self.full_batch_backward(model, x, y, 1)
            full = _grads(model)
            for k, name in (
                (cfg.micro_batches, "accumulated (even micro-batches)"),
                (uneven, "accumulated (uneven micro-batches)"),
            ):
                self.accumulated_backward(model, x, y, k)
                for pname, g in _grads(model).items():
                    ctx.assert_close(g, full[pname], name=name, where=f"{pname}, k={k}, seed {seed}")
        # trajectories: same parameters after a few momentum-SGD steps
        params = {v: self._train(cfg, v, ctx.device, ctx.dtype, ctx.rng_seed, steps=5)[0] for v in self.variants}
        for pname, p in params["accumulated"].items():
            ctx.assert_close(p, params["full_batch"][pname], name="parameters after 5 SGD steps", where=pname)
        # BatchNorm: a micro-batch is normalised by its own statistics, so the gradients differ
        x, y = _batch(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        model = _model(cfg, ctx.device, ctx.dtype, ctx.rng_seed, batch_norm=True)
        self.full_batch_backward(model, x, y, 1)
        full = _grads(model)
        self.accumulated_backward(model, x, y, cfg.micro_batches)
        rel = max(((g - full[n]).norm() / full[n].norm()).item() for n, g in _grads(model).items())
        ctx.expect(
            rel > 1e-3,
            f"with BatchNorm the accumulated gradient should differ from the full-batch one "
            f"(relative difference {rel:.2e}); is the BN model in train mode?",
            name="BatchNorm breaks the equivalence",
        )

    def _train(self, cfg: AccumConfig, variant: str, device, dtype, seed: int, steps: int):
        """(final parameters, per-step losses) after ``steps`` momentum-SGD steps."""
        model = _model(cfg, device, dtype, seed)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
        k = 1 if variant == "full_batch" else cfg.micro_batches
        losses = []
        for step in range(steps):
            x, y = _batch(cfg, device, dtype, seed * 100_003 + step)
            losses.append(self.backward(variant)(model, x, y, k))
            opt.step()
        return {n: p.detach() for n, p in model.named_parameters()}, torch.stack(losses).tolist()

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: AccumConfig) -> Prepared:
        model = _model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        x, y = _batch(config, ctx.device, ctx.dtype, ctx.rng_seed)
        k = 1 if impl == "full_batch" else config.micro_batches
        backward = self.backward(impl)

        def step():
            backward(model, x, y, k)
            opt.step()

        step()  # momentum buffers exist from here on, as in steady-state training
        return Prepared(fn=step, items=config.batch, item_unit="samples")

    def bench(self, ctx) -> None:
        peak = {}
        for config in ctx.configs:
            for v in self.variants:
                prepared = self.prepare(ctx, v, config)
                peak[v] = peak_memory_mb(prepared.fn, ctx.device)
                ctx.measure(v, prepared, config=config, peak_alloc_delta_mb=peak[v])
        if peak["full_batch"] > 0:  # at the last (largest) k
            ctx.metric("peak_memory_ratio", peak["accumulated"] / peak["full_batch"])
        cfg = ctx.configs[0]
        curves = {}
        for v in self.variants:
            _, curves[v] = self._train(cfg, v, ctx.device, ctx.dtype, ctx.rng_seed, steps=cfg.curve_steps)
            ctx.curve("train loss", list(range(1, cfg.curve_steps + 1)), curves[v], y_label="cross-entropy", series=v)
        ctx.metric("loss_curves_max_abs_diff", max(abs(a - b) for a, b in zip(*curves.values())))
