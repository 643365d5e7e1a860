"""3.01 A feedforward net with nn.Module.

Compared: ``models.mlp.MLP`` (an ``nn.Module`` whose ``__init__`` registers Linear and
activation layers in an ``nn.Sequential`` and whose ``forward`` flattens and applies them)
against what it must be: the shapes it maps, the parameters it registers and a hand count
of them, and a problem it must learn.

Check (tiny):

* shapes: (N, 4) -> (N, 3) for N = 1 and 7; a (N, 2, 2) input is flattened to 4 features;
  a wrong feature count raises ValueError;
* parameters: the registered ones are exactly, in order, weight (out, in) and bias (out,)
  of each Linear, and their total equals the hand formula
  sum over layers of (in * out + out) = 4*16+16 + 16*16+16 + 16*3+3 = 403 for 4-16-16-3
  (and ``MLPConfig.n_params``); every one of them receives a gradient;
* learning: Fisher's iris (150 real flowers, 4 measurements in cm, 3 species; setosa is
  linearly separable from the rest, versicolor and virginica nearly so), stratified 75/25
  split, standardised with train statistics; full-batch Adam (lr 0.05) for 150 steps must
  reach >= 90% test and >= 95% train accuracy (measured: 97.2% of the 36 test flowers,
  100% of the 114 train ones; a net that does not train stays near 33%).

Bench: samples/s of one training step (forward, backward, Adam) and of an eval forward
(``torch.no_grad``, eval mode) at batch 1024 (rows drawn from iris with replacement),
MLP 4-256-256-3; and the iris training curves.

GFLOP/s: 2 * batch * parameters per forward, 3x that per training step (2 backward matmuls).

Lesson: FLOPs say a training step costs 3x the forward, but at this size the step is not
bound by its matmuls but by what surrounds them (autograd saving activations and allocating
gradients, the optimizer's per-parameter work), which ``torch.no_grad`` and eval skip, so
the measured ratio is larger (the claims record it). The module itself is bookkeeping: a
layer kept in a Python list instead of an ``nn.Module`` attribute or container is
invisible to ``parameters()`` (a mutant below), so it is neither trained nor counted nor
moved by ``.to()`` (PyTorch docs, "torch.nn.Module": submodules are registered by
attribute assignment; ``nn.ModuleList`` holds lists of them).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.tabular import fit_standardizer, load_tabular, standardize, stratified_split
from harness.mutants import Mutant
from harness.train import fit, standard_step
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class FFConfig:
    """Network and batch of one run."""

    hidden: tuple[int, ...]
    """hidden widths (input 4 iris measurements, output 3 species)"""
    batch: int
    """samples per timed step (drawn from iris with replacement)"""
    steps: int = 150
    """full-batch Adam steps of the iris training run"""
    lr: float = 0.05
    """Adam learning rate"""

    def label(self) -> str:
        return f"mlp=4-{'-'.join(map(str, self.hidden))}-3,batch={self.batch}"


def hand_param_count(widths: list[int]) -> int:
    """Weights in*out plus biases out, summed over consecutive widths (in, h1, ..., out)."""
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def iris_split(seed: int, device, dtype):
    """Standardised iris (train statistics only): (x (N, 4), y (N,)) for train and test."""
    x, y = load_tabular("iris")
    tr, te = stratified_split(y, 0.25, seed=seed)
    mean, std = fit_standardizer(x[tr])
    return [(standardize(x[i], mean, std).to(device, dtype), y[i].to(device)) for i in (tr, te)]


# -- wrong versions (mutants): build(self, cfg) -> nn.Module ------------------------------


def _mlp(c, extra=()):
    return MLPConfig(4, (*c.hidden, *extra), 3)


class ListNotRegistered(nn.Module):
    """Keeps the hidden layers in a plain Python list: nn.Module never sees their parameters."""

    def __init__(self, cfg):
        super().__init__()
        widths = [4, *cfg.hidden]
        self.hidden = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        self.out = nn.Linear(widths[-1], 3)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)  # (N, 4)
        if x.shape[1] != 4:
            raise ValueError("expects 4 features")
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


class DetachesFirst(MLP):
    """Detaches after the first layer: its weights never get a gradient."""

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)  # (N, 4)
        if x.shape[1] != 4:
            raise ValueError("expects 4 features")
        return self.net[1:](self.net[0](x).detach())


class ConstantLogits(MLP):
    """Scales the logits to nothing and adds a constant: cannot separate iris."""

    def forward(self, x):
        return super().forward(x) * 1e-6 + torch.tensor([1.0, 0.0, 0.0], device=x.device)


@task("nn_basics.feedforward", seed="3.01", title="feedforward net with nn.Module")
class FeedForward(TrainingRun):
    __doc__ = __doc__
    variants = ("train_step", "eval_forward")
    sizes = {
        "tiny": FFConfig(hidden=(16, 16), batch=64),
        # wider nets take a smaller step: 0.05 on 256 wide makes the loss jump to ~8 at step 3
        "cpu": FFConfig(hidden=(256, 256), batch=1024, lr=0.01),
        "gpu": FFConfig(hidden=(4096, 4096), batch=8192, lr=0.002),
    }
    metrics = {
        "final_accuracy": "iris test accuracy after training, in [0, 1]",
        "train_step_over_eval": "median time of a training step / of an eval forward, same batch (FLOPs say 3)",
    }
    claims = (
        metric("final_accuracy", ">=", 0.9, text="the MLP learns iris: >= 90 % of held-out flowers"),
        metric("train_step_over_eval", ">=", 3.0, text="a training step costs >= 3x an eval forward (FLOPs: 3x)"),
    )
    mutants = tuple(
        Mutant(name, what, {"build": build}, match=match)
        for name, what, build, match in (
            ("list_not_registered", "hidden layers in a Python list", lambda self, c: ListNotRegistered(c), "shapes"),
            ("extra_layer", "one layer too many", lambda self, c: MLP(_mlp(c, extra=(8,))), "registered"),
            (
                "detached_first_layer",
                "detached after layer 1",
                lambda self, c: DetachesFirst(_mlp(c)),
                "no gradient",
            ),
            (
                "constant_logits",
                "logits scaled to nothing",
                lambda self, c: ConstantLogits(_mlp(c)),
                "iris",
            ),
        )
    )

    def build(self, cfg: FFConfig) -> nn.Module:
        """The network under test (tests replace it with planted bugs)."""
        return MLP(MLPConfig(in_features=4, hidden=cfg.hidden, out_features=3))

    def model(self, cfg: FFConfig, ctx) -> nn.Module:
        torch.manual_seed(ctx.rng_seed)
        return self.build(cfg).to(ctx.device, ctx.dtype)

    def train(self, cfg: FFConfig, ctx):
        train, test = iris_split(ctx.rng_seed, ctx.device, ctx.dtype)
        model = self.model(cfg, ctx)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        n = train[1].shape[0]  # full batch: one step per epoch
        log = fit(model, opt, train, batch_size=n, epochs=cfg.steps, eval_data=test, eval_every=10, seed=ctx.rng_seed)
        return model, log, train

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        model = self.model(cfg, ctx)
        dev, dt = ctx.device, ctx.dtype
        for n in (1, 7):
            out = model(torch.randn(n, 4, device=dev, dtype=dt))
            ctx.expect(
                tuple(out.shape) == (n, 3),
                f"(N={n}, 4) gave {tuple(out.shape)}, expected ({n}, 3)",
                name="output shape (N, 3)",
            )
        x = torch.randn(5, 2, 2, device=dev, dtype=dt)
        ctx.assert_close(model(x), model(x.reshape(5, 4)), name="(N, 2, 2) is flattened to (N, 4)")
        wrong = lambda: model(torch.randn(5, 3, device=dev, dtype=dt))  # noqa: E731 (named for reading)
        ctx.expect_raises(ValueError, wrong, match="features", name="wrong feature count rejected")
        widths = [4, *cfg.hidden, 3]
        want = [s for a, b in zip(widths[:-1], widths[1:]) for s in ((b, a), (b,))]
        got = [tuple(p.shape) for p in model.parameters()]
        ctx.expect(got == want, f"registered parameter shapes {got}, expected {want}", name="registered parameters")
        total = sum(p.numel() for p in model.parameters())
        ctx.expect(
            total == hand_param_count(widths) == MLPConfig(4, cfg.hidden, 3).n_params(),
            f"{total} parameters, hand formula {hand_param_count(widths)}",
            name="parameter count = formula",
        )
        ctx.metric("n_params", total)
        model.zero_grad()
        F.cross_entropy(model(torch.randn(8, 4, device=dev, dtype=dt)), torch.arange(8, device=dev) % 3).backward()
        ctx.expect(
            all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()),
            "a parameter got no gradient",
            name="every parameter gets a gradient",
        )
        model, log, train = self.train(cfg, ctx)
        log.record(ctx, series="iris")
        train_acc = (model(train[0]).argmax(-1) == train[1]).float().mean().item()
        ctx.metric("train_accuracy", train_acc)
        ctx.expect(
            log.final_accuracy >= 0.9 and train_acc >= 0.95,
            f"iris: test accuracy {log.final_accuracy:.3f} (need 0.90), train {train_acc:.3f} (need 0.95)",
            name="learns iris",
        )

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: FFConfig) -> Prepared:
        train, _ = iris_split(ctx.rng_seed, ctx.device, ctx.dtype)
        idx = torch.randint(0, train[1].shape[0], (config.batch,), generator=ctx.generator()).to(ctx.device)
        x, y = train[0][idx], train[1][idx]  # (batch, 4), (batch,)
        model = self.model(config, ctx)
        if impl == "train_step":
            opt = torch.optim.Adam(model.parameters(), lr=config.lr)
            fn = lambda: standard_step(model, opt, x, y, F.cross_entropy)  # noqa: E731
        else:
            model.eval()

            def fn():
                with torch.no_grad():
                    return model(x)

        fwd_flops = 2 * config.batch * hand_param_count([4, *config.hidden, 3])
        return Prepared(
            fn=fn, items=config.batch, item_unit="samples", flops=fwd_flops * (3 if impl == "train_step" else 1)
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        _, log, _ = self.train(cfg, ctx)
        log.record(ctx, series="iris")
        ms = {v: ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg) for v in self.variants}
        # a cost ratio of unlike work on purpose (the lesson's point), so a metric, not a speedup
        ctx.metric("train_step_over_eval", ms["train_step"].median_ms / ms["eval_forward"].median_ms)
