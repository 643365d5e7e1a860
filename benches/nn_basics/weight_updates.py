"""3.05 Visualize weight updates during training.

Compared: the update/weight ratio ``||W_{t+1} - W_t|| / ||W_t||`` (Frobenius norms) of
every weight matrix at every optimizer step, recorded three ways: not at all (the
baseline), by ``kernels.optim.update_ratio.UpdateRatioTracker`` (snapshot with ``torch._foreach_copy_``, norms
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

Lesson: Adam's first step moves every weight by about lr (its update is ~lr * sign(grad)
while the moment estimates are young; Kingma & Ba, "Adam", ICLR 2015, sec. 2.1: the
effective step is bounded by ~lr), so the first ratio is about lr * sqrt(fan_out * fan_in)
/ ||W_0||, and it then decays towards the ~1e-3 that the CS231n notes ("Neural Networks
Part 3", "Ratio of weights:updates") call healthy. The heatmap shows every layer over the
steps. Recording costs one extra copy, subtract and two norms over the tracked weights per
step; the ``.item()`` recorder costs the same on CPU, where ``.item()`` waits for nothing,
but on CUDA each of its 2 x layers ``.item()`` calls is a device sync per step, which is
why the tracker keeps the ratios on the device until the end.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import fit
from kernels.optim.update_ratio import ItemTracker, UpdateRatioTracker
from models.mlp import MLP, MLPConfig


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
    x, y, _, _ = digits_split(0.25, seed=seed, dtype=dtype)
    return x.to(device), y.to(device)


# -- wrong versions (mutants): make_tracker(self, model) -----------------------------------


class GradOverWeight(UpdateRatioTracker):  # ||grad|| / ||W||: forgets lr and the optimizer's transform
    @torch.no_grad()
    def after_step(self):
        self.pending.append(torch.stack([p.grad.norm() / q.norm() for p, q in zip(self.params, self.prev)]))


class AgainstNewWeights(UpdateRatioTracker):  # divides by ||W_{t+1}|| instead of ||W_t||
    @torch.no_grad()
    def after_step(self):
        self.pending.append(torch.stack([(p - q).norm() / p.norm() for p, q in zip(self.params, self.prev)]))


class NeverResnapshots(UpdateRatioTracker):  # keeps W_0: records the cumulative change
    def before_step(self):
        pass


class OneStepLate(UpdateRatioTracker):  # records the previous step's ratio (a zero first)
    @torch.no_grad()
    def after_step(self):
        last = getattr(self, "last", torch.zeros(len(self.params)))
        self.last = torch.stack([(p - q).norm() / q.norm() for p, q in zip(self.params, self.prev)])
        self.pending.append(last)


@task("nn_basics.weight_updates", seed="3.05", title="visualize weight updates during training")
class WeightUpdates(Comparison):
    __doc__ = __doc__
    variants = ("no_tracking", "tracker", "item_per_step")
    sizes = {
        "tiny": WUConfig(hidden=(32, 32), epochs=2),
        "cpu": WUConfig(hidden=(256, 256), epochs=10),
        "gpu": WUConfig(hidden=(2048, 2048), epochs=10, batch_size=512),
    }
    metrics = {"median_ratio": "median update/weight ratio over all layers and steps of the Adam run"}
    claims = (
        metric("median_ratio", "<=", 1e-2, text="Adam lr 1e-3: median update/weight ratio <= 1e-2 (CS231n: ~1e-3)"),
        metric("median_ratio", ">=", 1e-4, text="Adam lr 1e-3: median update/weight ratio >= 1e-4 (the layers learn)"),
        time_ratio("tracker", to="no_tracking", at_most=1.5, text="recording the ratios costs <= 1.5x a plain step"),
        speedup("tracker", over="item_per_step", at_least=1.0, device="cuda", text="on CUDA no .item() syncs pays"),
    )
    mutants = tuple(
        Mutant(name, what, {"make_tracker": lambda self, model, cls=cls: cls(model)}, match="independent parameter")
        for name, what, cls in (
            ("grad_over_weight", "records ||grad|| / ||W||", GradOverWeight),
            ("against_new_weights", "divides by ||W_{t+1}||", AgainstNewWeights),
            ("never_resnapshots", "the cumulative change since W_0", NeverResnapshots),
            ("one_step_late", "the previous step's ratio", OneStepLate),
        )
    )

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
            opt_cls, lr = (torch.optim.Adam, cfg.adam_lr) if opt_name == "adam" else (torch.optim.SGD, cfg.sgd_lr)
            opt = opt_cls(model.parameters(), lr=lr)
            tracker = self.make_tracker(model)
            weights = {n: p for n, p in model.named_parameters() if p.dim() >= 2}
            before, after, grads = [], [], []

            def hook(when):  # the independent record: full float64 copies
                snap = {n: p.detach().double().clone() for n, p in weights.items()}
                (before if when == "before" else after).append(snap)
                if when == "before":
                    grads.append({n: p.grad.detach().double().clone() for n, p in weights.items()})

            step = self.step_with(tracker, hook)
            kw = {"batch_size": cfg.batch_size, "max_steps": cfg.check_steps, "epochs": 10**6, "seed": ctx.rng_seed}
            fit(model, opt, (x, y), step_fn=step, **kw)
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
                    steps = list(range(1, len(got[n]) + 1))
                    ctx.curve("update/weight ratio", steps, got[n], y_label="||dW|| / ||W||", series=n, log_y=True)
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
        step = self.step_with(tracker)
        log = fit(model, opt, (x, y), batch_size=cfg.batch_size, epochs=cfg.epochs, step_fn=step, seed=ctx.rng_seed)
        log.record(ctx, series="adam")
        ratios = tracker.ratios()
        for n, r in ratios.items():
            ctx.metric(f"{n}.first_ratio", r[0])
        table = torch.tensor(list(ratios.values()), dtype=torch.float64)  # (layers, steps)
        ctx.metric("median_ratio", table.median().item())
        steps = list(range(1, table.shape[1] + 1))
        ctx.heatmap(
            "update/weight ratio (log10)",
            table.log10(),
            x=steps,
            y=list(ratios),
            x_label="step",
            y_label="layer",
            caption="log10 ||W_{t+1} - W_t|| / ||W_t|| per weight matrix and Adam step",
        )
        super().bench(ctx)
