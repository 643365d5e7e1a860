"""3.05 Visualize weight updates during training.

Compared: the update/weight ratio ``||W_{t+1} - W_t|| / ||W_t||`` (Frobenius norms) of
every weight matrix at every optimizer step, recorded three ways: not at all (the
baseline), by :class:`UpdateRatioTracker` (snapshot with ``torch._foreach_copy_``, norms
with ``torch._foreach_norm``, one stacked tensor per step, copied to the host once at the
end: no device sync inside the loop), and naively (per layer ``.item()`` every step).

Check (tiny: MLP 64-32-32-10 on scikit-learn's real 8x8 digits, 30 steps, batch 64):

* Adam: the tracker's ratios equal ratios computed independently from full float64 copies
  of every weight taken before and after each ``optimizer.step()`` (rtol 1e-5: the tracker
  takes float32 norms, ~1e-7 relative each; a ratio against the wrong weights, one step
  late, or against W_0 is off by 1e-3 or more);
* plain SGD (no momentum, no decay): ratio = lr * ||grad|| / ||W_t|| (rtol 1e-3: W_{t+1} is
  W_t - lr * grad rounded to float32, an error of ~6e-8 ||W|| against an update of ~1e-3
  ||W||; measured 7e-7), which ties the recorded number to what the optimizer did;
* one curve per layer goes into the report (log scale).

Bench: the ratio curves of a longer Adam run (cpu preset: 64-256-256-10, 10 epochs), and
the time of one training step with each recording variant.

Lesson (cpu preset, Adam lr 1e-3, ``OMP_NUM_THREADS=1 drills bench --task
nn_basics.weight_updates --no-save``, shared 2-core VM under load, medians): Adam's first
step moves every weight by about lr (its update is ~lr * sign(grad) while the moment
estimates are young), so the first ratio is lr * sqrt(fan_out * fan_in) / ||W_0||: 0.012 for
the 256x64 input layer (the formula gives 0.014 for Kaiming-uniform init), 0.024-0.025 for
the others; it decays to ~2e-3 after 210 steps (medians 3.0e-3, 4.1e-3, 3.3e-3), a
little above the ~1e-3 that Karpathy's rule of thumb calls healthy. Recording costs
3.55 -> 4.37 ms per step (+0.8 ms: one extra copy, subtract and two norms over the 84k
tracked weights); the ``.item()`` recorder costs the same on CPU, where ``.item()`` does not
wait for anything; on CUDA each of its 2 x layers ``.item()`` calls is a device sync per
step, which is why the tracker keeps the ratios on the device until the end.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.data.tabular import load_digits_images, stratified_split
from harness.train import fit
from models.mlp import MLP, MLPConfig


class UpdateRatioTracker:
    """Records ||W_{t+1} - W_t|| / ||W_t|| for each weight matrix at each optimizer step.

    Call :meth:`before_step` right before ``optimizer.step()`` and :meth:`after_step` right
    after. Tracked: parameters with 2 or more dims (Linear/conv weights), by name.
    Memory: one copy of the tracked weights. Values stay on the device until
    :meth:`ratios`, which copies them once.
    """

    def __init__(self, model: nn.Module):
        named = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.prev = [p.detach().clone() for p in self.params]
        self.pending: list[torch.Tensor] = []  # one (layers,) tensor per step

    @torch.no_grad()
    def before_step(self) -> None:
        torch._foreach_copy_(self.prev, [p.detach() for p in self.params])  # W_t

    @torch.no_grad()
    def after_step(self) -> None:
        delta = torch._foreach_sub([p.detach() for p in self.params], self.prev)  # W_{t+1} - W_t
        num = torch.stack(torch._foreach_norm(delta))  # (layers,)
        den = torch.stack(torch._foreach_norm(self.prev))
        self.pending.append(num / den)

    def ratios(self) -> dict[str, list[float]]:
        """Layer name -> ratio at each recorded step (one host copy for the whole run)."""
        if not self.pending:
            return {n: [] for n in self.names}
        table = torch.stack(self.pending).double().cpu()  # (steps, layers)
        return {n: table[:, i].tolist() for i, n in enumerate(self.names)}


class ItemTracker(UpdateRatioTracker):
    """The naive recorder: a Python float per layer per step (``.item()`` syncs on CUDA)."""

    @torch.no_grad()
    def after_step(self) -> None:
        self.pending.append(
            torch.tensor([(p - q).norm().item() / q.norm().item() for p, q in zip(self.params, self.prev)])
        )


@dataclasses.dataclass(frozen=True)
class WUConfig:
    """Model and budget of the recorded runs."""

    hidden: tuple[int, ...]
    """MLP hidden widths (64 inputs, 10 classes)"""
    epochs: int
    """passes over the 1,347 training digits in the bench run"""
    check_steps: int = 30
    """optimizer steps of each check run"""
    batch_size: int = 64
    """samples per step"""
    adam_lr: float = 1e-3
    """Adam learning rate"""
    sgd_lr: float = 0.1
    """plain SGD learning rate (check only)"""

    def label(self) -> str:
        return f"mlp=64-{'-'.join(map(str, self.hidden))}-10,bs={self.batch_size}"


def digits_train(seed: int, device, dtype):
    """The training split of the digits (75%, stratified): (N, 64) in [0, 1], (N,)."""
    images, labels = load_digits_images()
    tr, _ = stratified_split(labels, 0.25, seed=seed)
    return images[tr].reshape(-1, 64).to(device, dtype) / 16.0, labels[tr].to(device)


@task("nn_basics.weight_updates", seed="3.05", title="visualize weight updates during training")
class WeightUpdates(Comparison):
    __doc__ = __doc__
    variants = ("no_tracking", "tracker", "item_per_step")
    sizes = {
        "tiny": WUConfig(hidden=(32, 32), epochs=2),
        "cpu": WUConfig(hidden=(256, 256), epochs=10),
        "gpu": WUConfig(hidden=(2048, 2048), epochs=10, batch_size=512),
    }

    def make_tracker(self, model: nn.Module) -> UpdateRatioTracker:
        """The recorder under test (tests replace it with planted bugs)."""
        return UpdateRatioTracker(model)

    def model(self, cfg: WUConfig, ctx) -> nn.Module:
        torch.manual_seed(ctx.rng_seed)
        return MLP(MLPConfig(in_features=64, hidden=cfg.hidden, out_features=10)).to(ctx.device, ctx.dtype)

    @staticmethod
    def step_with(tracker, hook=None):
        """A ``harness.train`` step that wraps ``optimizer.step()`` in the tracker's calls."""

        def step(model, opt, x, y, loss_fn):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            if hook is not None:
                hook("before")
            if tracker is not None:
                tracker.before_step()
            opt.step()
            if tracker is not None:
                tracker.after_step()
            if hook is not None:
                hook("after")
            return loss.detach()

        return step

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        x, y = digits_train(ctx.rng_seed, ctx.device, ctx.dtype)
        for opt_name in ("adam", "sgd"):
            model = self.model(cfg, ctx)
            opt = (
                torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
                if opt_name == "adam"
                else torch.optim.SGD(model.parameters(), lr=cfg.sgd_lr)
            )
            tracker = self.make_tracker(model)
            weights = {n: p for n, p in model.named_parameters() if p.dim() >= 2}
            before, after, grads = [], [], []

            def hook(when):  # the independent record: full float64 copies
                snap = {n: p.detach().double().clone() for n, p in weights.items()}
                (before if when == "before" else after).append(snap)
                if when == "before":
                    grads.append({n: p.grad.detach().double().clone() for n, p in weights.items()})

            fit(
                model,
                opt,
                (x, y),
                batch_size=cfg.batch_size,
                max_steps=cfg.check_steps,
                epochs=10**6,
                step_fn=self.step_with(tracker, hook),
                seed=ctx.rng_seed,
            )
            got = tracker.ratios()
            ctx.expect(
                sorted(got) == sorted(weights),
                f"tracked layers {sorted(got)}, expected {sorted(weights)}",
                name="one series per weight matrix",
            )
            for n in weights:
                ref = torch.tensor(
                    [(a[n] - b[n]).norm().item() / b[n].norm().item() for b, a in zip(before, after)],
                    dtype=torch.float64,
                )
                mine = torch.tensor(got[n], dtype=torch.float64)
                ctx.expect(
                    mine.shape == ref.shape,
                    f"{n}: {mine.numel()} ratios for {ref.numel()} steps",
                    name="one ratio per step",
                )
                if opt_name == "adam":
                    ctx.assert_close(
                        mine, ref, name="ratios = independent parameter deltas (Adam)", where=n, rtol=1e-5, atol=0
                    )
                    ctx.curve(
                        "update/weight ratio",
                        list(range(1, len(got[n]) + 1)),
                        got[n],
                        y_label="||dW|| / ||W||",
                        series=n,
                        log_y=True,
                    )
                else:
                    lr_grad = torch.tensor(
                        [cfg.sgd_lr * g[n].norm().item() / b[n].norm().item() for g, b in zip(grads, before)],
                        dtype=torch.float64,
                    )
                    ctx.assert_close(
                        mine, lr_grad, name="SGD ratios = lr * ||grad|| / ||W||", where=n, rtol=1e-3, atol=0
                    )

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: WUConfig) -> Prepared:
        x, y = digits_train(ctx.rng_seed, ctx.device, ctx.dtype)
        xb, yb = x[: config.batch_size], y[: config.batch_size]
        model = self.model(config, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=config.adam_lr)
        tracker = {"no_tracking": None, "tracker": self.make_tracker(model), "item_per_step": ItemTracker(model)}[impl]
        step = self.step_with(tracker)
        return Prepared(
            fn=lambda: step(model, opt, xb, yb, F.cross_entropy), items=config.batch_size, item_unit="samples"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        x, y = digits_train(ctx.rng_seed, ctx.device, ctx.dtype)
        model = self.model(cfg, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
        tracker = self.make_tracker(model)
        log = fit(
            model,
            opt,
            (x, y),
            batch_size=cfg.batch_size,
            epochs=cfg.epochs,
            step_fn=self.step_with(tracker),
            seed=ctx.rng_seed,
        )
        log.record(ctx, series="adam")
        for n, r in tracker.ratios().items():
            ctx.curve(
                "update/weight ratio", list(range(1, len(r) + 1)), r, y_label="||dW|| / ||W||", series=n, log_y=True
            )
            ctx.metric(f"{n}.median_ratio", sorted(r)[len(r) // 2])
            ctx.metric(f"{n}.first_ratio", r[0])
        super().bench(ctx)
