"""3.08 ReLU vs Tanh vs Sigmoid.

Compared: the same MLP on scikit-learn's real 8x8 digits (1,347 train / 450 test,
stratified) with ReLU (the baseline), Tanh or Sigmoid after every hidden Linear: same seed
(so the same Linear weights: activations draw no random numbers), same data order, same
Adam budget.

Check (tiny: 64-64-64-10, Adam lr 3e-3, batch 64, 6 epochs = 126 steps):

* the three runs start from identical weights and take the same number of steps;
* each one trains: the mean loss of its last epoch is below 3/4 of its first-step loss and
  its test accuracy is at least 50% (5x chance); measured: ReLU 94.4%, Tanh 96.9%, Sigmoid
  74.7% (loss still 1.2) after this budget;
* loss and test-accuracy curves for all three go into the report, one line each.

Bench: the same at cpu size (64-3x128-10, 20 epochs): curves, final loss and accuracy per
activation, and the time of one training step per activation.

Lesson: Sigmoid's derivative is at most 1/4 and its outputs are all positive (not
zero-centred), so each hidden layer shrinks the backward signal at least fourfold and biases
the next layer's gradients to one sign (LeCun et al., "Efficient BackProp", 1998, sec. 4.4;
Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
networks", AISTATS 2010); Tanh (derivative up to 1, zero-centred) and ReLU (1 on the active
half) do not, so at the same budget Sigmoid trails by many points while its loss sits near
ln 10 = 2.30 for the first epoch. The activation itself is a few microseconds of a
millisecond-scale step, so the choice is about trainability, not speed: the claims say so.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.train import fit, standard_step
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class ActConfig:
    """The shared budget of the three runs."""

    hidden: tuple[int, ...]
    """MLP hidden widths (64 inputs, 10 classes)"""
    epochs: int
    """passes over the 1,347 training digits"""
    batch_size: int = 64
    """samples per Adam step"""
    lr: float = 3e-3
    """Adam learning rate"""

    def label(self) -> str:
        return f"mlp=64-{'-'.join(map(str, self.hidden))}-10,bs={self.batch_size},epochs={self.epochs}"


# -- wrong versions (mutants) ------------------------------------------------------------


def _frozen_sigmoid(self, activation, cfg, ctx):
    """The sigmoid net's gradients are zeroed: it cannot train."""
    m = Activations.model(self, activation, cfg, ctx)
    if activation == "sigmoid":
        for p in m.parameters():
            p.requires_grad_(False)
        m.net[0].weight.requires_grad_(True)  # Adam needs one trainable tensor; the net stays near chance
        m.net[0].weight.register_hook(lambda g: g * 0)
    return m


def _other_seed(self, activation, cfg, ctx):
    """Tanh starts from other weights: the comparison is not on one seed."""
    m = Activations.model(self, activation, cfg, ctx)
    if activation == "tanh":
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01 * torch.randn_like(p))
    return m


def _shorter_relu_budget(self, activation, cfg, ctx, data):
    """ReLU gets one epoch less."""
    if activation == "relu":
        cfg = dataclasses.replace(cfg, epochs=cfg.epochs - 1)
    return Activations.run(self, activation, cfg, ctx, data)


@task("nn_basics.activations", seed="3.08", title="ReLU vs Tanh vs Sigmoid")
class Activations(Comparison):
    __doc__ = __doc__
    variants = ("relu", "tanh", "sigmoid")
    sizes = {
        "tiny": ActConfig(hidden=(64, 64), epochs=6),
        "cpu": ActConfig(hidden=(128, 128, 128), epochs=20, lr=1e-3),
        "gpu": ActConfig(hidden=(1024, 1024, 1024), epochs=20, lr=1e-3),
    }
    metrics = {
        **{f"{a}.final_accuracy": f"{a} net's test accuracy after the budget, in [0, 1]" for a in variants},
        "relu_minus_sigmoid_accuracy": "ReLU's final test accuracy minus Sigmoid's, in [0, 1]",
    }
    claims = (
        metric(
            "relu_minus_sigmoid_accuracy",
            ">=",
            0.05,
            text="at the same seed and budget Sigmoid trails ReLU by >= 5 points of test accuracy",
        ),
        metric("relu.final_accuracy", ">=", 0.97, text="the ReLU MLP reaches >= 97 % held-out digits accuracy"),
        time_ratio("sigmoid", to="relu", at_most=1.2, text="a Sigmoid training step costs <= 1.2x a ReLU step"),
    )
    mutants = (
        Mutant("sigmoid_frozen", "the sigmoid net's gradients are zeroed", {"model": _frozen_sigmoid}, match="sigmoid"),
        Mutant("other_seed", "tanh starts from perturbed weights", {"model": _other_seed}, match="initial weights"),
        Mutant("shorter_budget", "relu trains one epoch less", {"run": _shorter_relu_budget}, match="budget"),
    )

    def model(self, activation: str, cfg: ActConfig, ctx) -> nn.Module:
        """The network of one variant (tests replace it with planted bugs)."""
        torch.manual_seed(ctx.rng_seed)
        return MLP(MLPConfig(in_features=64, hidden=cfg.hidden, out_features=10, activation=activation)).to(
            ctx.device, ctx.dtype
        )

    def data(self, ctx):
        x, y, xt, yt = digits_split(0.25, seed=ctx.rng_seed, dtype=ctx.dtype)  # (N, 64) in [0, 1]
        return (x.to(ctx.device), y.to(ctx.device)), (xt.to(ctx.device), yt.to(ctx.device))

    def run(self, activation: str, cfg: ActConfig, ctx, data):
        model = self.model(activation, cfg, ctx)
        init = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        log = fit(
            model, opt, data[0], batch_size=cfg.batch_size, epochs=cfg.epochs, eval_data=data[1], seed=ctx.rng_seed
        )
        return init, log

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(ctx)
        steps_per_epoch = data[0][1].shape[0] // cfg.batch_size
        runs = {a: self.run(a, cfg, ctx, data) for a in self.variants}
        ref_init = runs["relu"][0]
        for act, (init, log) in runs.items():
            ctx.expect(
                len(init) == len(ref_init) and all(torch.equal(a, b) for a, b in zip(init, ref_init)),
                f"{act}: initial weights differ from relu's (not the same seed)",
                name="same initial weights",
            )
            ctx.expect(
                len(log.losses) == cfg.epochs * steps_per_epoch,
                f"{act}: {len(log.losses)} steps, budget {cfg.epochs * steps_per_epoch}",
                name="same budget",
            )
            last = sum(log.losses[-steps_per_epoch:]) / steps_per_epoch
            ctx.expect(
                last < 0.75 * log.losses[0],
                f"{act}: last-epoch loss {last:.3f} is not below 3/4 of the first {log.losses[0]:.3f}",
                name="each activation trains (loss)",
            )
            ctx.expect(
                log.final_accuracy >= 0.5,
                f"{act}: test accuracy {log.final_accuracy:.3f} < 0.5",
                name="each activation trains (accuracy)",
            )
            log.record(ctx, series=act, prefix=f"{act}.")
        ctx.metric("relu_minus_sigmoid_accuracy", runs["relu"][1].final_accuracy - runs["sigmoid"][1].final_accuracy)

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ActConfig) -> Prepared:
        (x, y), _ = self.data(ctx)
        xb, yb = x[: config.batch_size], y[: config.batch_size]
        model = self.model(impl, config, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        return Prepared(
            fn=lambda: standard_step(model, opt, xb, yb, F.cross_entropy), items=config.batch_size, item_unit="samples"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(ctx)
        rows, acc = [], {}
        for act in self.variants:
            _, log = self.run(act, cfg, ctx, data)
            log.record(ctx, series=act, prefix=f"{act}.")
            acc[act] = log.final_accuracy
            rows.append(
                {
                    "activation": act,
                    "final_loss": round(log.losses[-1], 4),
                    "test_accuracy": round(log.final_accuracy, 4),
                    "train_time_s": round(log.train_time_s, 3),
                }
            )
        ctx.table("final loss and accuracy per activation", rows)
        ctx.metric("relu_minus_sigmoid_accuracy", acc["relu"] - acc["sigmoid"])
        super().bench(ctx)
