"""3.04 With vs without batch normalization.

Compared: the same MLP on scikit-learn's real 8x8 digits (1,347 train / 450 test,
stratified), same seed, same Linear initialisation, same SGD budget, three ways:
``no_bn`` (the baseline), ``own_bn`` (``kernels.layers.batchnorm.BatchNorm1d`` after every hidden
Linear) and ``torch_bn`` (``nn.BatchNorm1d`` in the same places).

Check (tiny, float32):

* ``kernels.layers.batchnorm`` equals ``nn.BatchNorm1d``/``nn.BatchNorm2d`` on (N, C), (N, C, L) and
  (N, C, H, W) inputs, with momentum 0.1 and momentum None (cumulative average), with and
  without affine parameters, and without running statistics: over 3 training steps the
  outputs, the gradients for input, weight and bias, ``running_mean``, ``running_var``
  (updated with the *unbiased* batch variance m/(m-1) var while normalising with the biased
  one) and ``num_batches_tracked``; then the same in eval mode; bad ranks, channel counts and
  a single value per channel in training raise ValueError;
* the comparison runs: every variant's training loss halves, and ``own_bn``'s loss curve
  equals ``torch_bn``'s step for step (rtol 1e-4: float32 rounding of two different but
  equal formulas compounds over the steps; a wrong running statistic or gradient is off by
  far more).

Bench: loss and test-accuracy curves and time per epoch of every variant (one chart per
quantity, one line per variant), plus one timed training step per variant.

Lesson (cpu preset: MLP 64-4x128-10 with sigmoid, SGD lr 0.1 momentum 0.9, batch 64, 15
epochs; ``OMP_NUM_THREADS=1 drills bench --task nn_basics.batchnorm_compare --no-save`` on
the shared 2-core VM, one thread because other jobs' load made two-thread timings
meaningless): without BN the net does not learn at all in 15 epochs (loss 2.36 -> 2.31,
test accuracy 10%, chance); with BN it reaches 97.8% (loss 0.032), and the own and torch
BN runs give the same loss curve over all 315 steps. Median time per epoch: no_bn 16 ms,
torch_bn 24 ms, own_bn 43 ms (one step: 0.73, 1.09, 3.2 ms). Four stacked sigmoids at this
learning rate saturate and their gradients vanish; normalising every pre-activation keeps
them in the sigmoid's steep range. BN costs ~1.5x per step in this overhead-bound small net
and the hand version 3x more (a Python autograd.Function, unfused: several extra passes
and kernel calls per layer), but buys a network that trains.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.data.tabular import load_digits_images, stratified_split
from harness.train import fit, standard_step
from kernels.layers.batchnorm import BatchNorm1d, BatchNorm2d
from models.mlp import MLP, MLPConfig

#: (module pair, input shape, constructor kwargs) of the equality check
EQUALITY_CASES = [
    ("1d", (16, 6), {"momentum": 0.1}),
    ("1d", (8, 6, 5), {"momentum": None}),
    ("2d", (4, 6, 5, 7), {"momentum": 0.1}),
    ("2d", (3, 6, 4, 4), {"momentum": None, "affine": False}),
    ("1d", (16, 6), {"track_running_stats": False}),
]


@dataclasses.dataclass(frozen=True)
class BNConfig:
    """One training budget shared by the three variants."""

    hidden: tuple[int, ...]
    """hidden widths of the MLP (input 64 pixels, output 10 classes)"""
    epochs: int
    """passes over the 1,347 training digits"""
    activation: str = "sigmoid"
    """hidden non-linearity (sigmoid saturates: where normalisation helps most)"""
    batch_size: int = 64
    """samples per SGD step (BN statistics come from this many samples)"""
    lr: float = 0.1
    """SGD learning rate (momentum 0.9)"""

    def label(self) -> str:
        widths = "-".join(map(str, self.hidden))
        return f"mlp=64-{widths}-10,{self.activation},bs={self.batch_size},epochs={self.epochs}"


def digits_split(seed: int, device, dtype):
    """(x_train, y_train), (x_test, y_test): pixels / 16 in [0, 1], (N, 64) and (N,)."""
    images, labels = load_digits_images()
    x = images.reshape(-1, 64).to(dtype) / 16.0  # (1797, 64)
    tr, te = stratified_split(labels, 0.25, seed=seed)
    return (x[tr].to(device), labels[tr].to(device)), (x[te].to(device), labels[te].to(device))


@task("nn_basics.batchnorm_compare", seed="3.04", title="with vs without batch normalization")
class BatchNormCompare(Comparison):
    __doc__ = __doc__
    variants = ("no_bn", "own_bn", "torch_bn")
    bn1d, bn2d = BatchNorm1d, BatchNorm2d  # the implementations under test
    sizes = {
        "tiny": BNConfig(hidden=(32, 32), epochs=4, activation="relu"),
        "cpu": BNConfig(hidden=(128,) * 4, epochs=15),
        "gpu": BNConfig(hidden=(1024,) * 4, epochs=15, batch_size=256),
    }

    def model(self, variant: str, cfg: BNConfig, ctx, seed: int) -> nn.Module:
        torch.manual_seed(seed)  # BN layers draw nothing: all variants get the same Linear weights
        m = MLP(
            MLPConfig(
                in_features=64,
                hidden=cfg.hidden,
                out_features=10,
                activation=cfg.activation,
                batch_norm=variant != "no_bn",
            )
        )
        if variant == "own_bn":
            for name, child in m.net.named_children():
                if isinstance(child, nn.BatchNorm1d):
                    setattr(m.net, name, self.bn1d(child.num_features))
        return m.to(ctx.device, ctx.dtype)

    def train(self, variant: str, cfg: BNConfig, ctx, data):
        model = self.model(variant, cfg, ctx, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
        return fit(
            model, opt, data[0], batch_size=cfg.batch_size, epochs=cfg.epochs, eval_data=data[1], seed=ctx.rng_seed
        )

    # -- check ---------------------------------------------------------------------------
    def check_equal(self, ctx, kind: str, shape, kw: dict, seed: int) -> None:
        ref_cls, own_cls = (nn.BatchNorm1d, self.bn1d) if kind == "1d" else (nn.BatchNorm2d, self.bn2d)
        g = torch.Generator().manual_seed(seed)
        c = shape[1]
        ref = ref_cls(c, **kw).to(ctx.device, ctx.dtype)
        if ref.affine:
            with torch.no_grad():
                ref.weight.copy_(torch.randn(c, generator=g))
                ref.bias.copy_(torch.randn(c, generator=g))
        own = own_cls(c, **kw).to(ctx.device, ctx.dtype)
        own.load_state_dict(ref.state_dict())
        where = f"BatchNorm{kind} {shape} {kw}"
        for mode in ("train", "train", "train", "eval"):
            ref.train(mode == "train")
            own.train(mode == "train")
            x = (torch.randn(shape, generator=g) * 3 + 1).to(ctx.device, ctx.dtype)  # mean 1, var 9
            gy = torch.randn(shape, generator=g).to(ctx.device, ctx.dtype)
            xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            yr, yo = ref(xr), own(xo)
            yr.backward(gy)
            yo.backward(gy)
            ctx.assert_close(yo, yr, name=f"output ({mode})", where=where)
            ctx.assert_close(xo.grad, xr.grad, name=f"grad input ({mode})", where=where)
            if ref.affine:
                ctx.assert_close(own.weight.grad, ref.weight.grad, name=f"grad weight ({mode})", where=where)
                ctx.assert_close(own.bias.grad, ref.bias.grad, name=f"grad bias ({mode})", where=where)
                own.zero_grad()
                ref.zero_grad()
            if ref.track_running_stats:
                ctx.assert_close(own.running_mean, ref.running_mean, name="running_mean", where=where)
                ctx.assert_close(own.running_var, ref.running_var, name="running_var (unbiased update)", where=where)
                ctx.assert_close(
                    own.num_batches_tracked, ref.num_batches_tracked, name="num_batches_tracked", where=where
                )

    def check(self, ctx) -> None:
        for i, (kind, shape, kw) in enumerate(EQUALITY_CASES):
            self.check_equal(ctx, kind, shape, kw, ctx.rng_seed + i)
        for bad, cls, shape in (
            ("rank", self.bn1d, (2, 4, 3, 3)),
            ("rank", self.bn2d, (2, 4, 3)),
            ("channels", self.bn1d, (2, 5)),
            ("one value per channel", self.bn1d, (1, 4)),
        ):
            x = torch.randn(shape, device=ctx.device, dtype=ctx.dtype)
            ctx.expect_raises(ValueError, lambda: cls(4).to(ctx.device, ctx.dtype)(x), name=f"rejects wrong {bad}")
        cfg = ctx.configs[0]
        data = digits_split(ctx.rng_seed, ctx.device, ctx.dtype)
        logs = {v: self.train(v, cfg, ctx, data) for v in self.variants}
        for v, log in logs.items():
            ctx.expect(
                log.losses[-1] < 0.5 * log.losses[0],
                f"{v}: loss did not halve ({log.losses[0]:.3f} -> {log.losses[-1]:.3f})",
                name=f"{v} trains",
            )
            log.record(ctx, series=v, prefix=f"{v}.")
        ctx.assert_close(
            torch.tensor(logs["own_bn"].losses),
            torch.tensor(logs["torch_bn"].losses),
            name="own_bn loss curve = torch_bn loss curve",
            rtol=1e-4,
            atol=1e-5,
        )

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: BNConfig) -> Prepared:
        (x, y), _ = digits_split(ctx.rng_seed, ctx.device, ctx.dtype)
        xb, yb = x[: config.batch_size], y[: config.batch_size]
        model = self.model(impl, config, ctx, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        return Prepared(
            fn=lambda: standard_step(model, opt, xb, yb, F.cross_entropy), items=config.batch_size, item_unit="samples"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = digits_split(ctx.rng_seed, ctx.device, ctx.dtype)
        for v in self.variants:
            log = self.train(v, cfg, ctx, data)
            log.record(ctx, series=v, prefix=f"{v}.")
            epoch_s = [len(data[0][1]) // cfg.batch_size * cfg.batch_size / r for r in log.epoch_samples_per_s]
            ctx.curve(
                "time per epoch", list(range(1, len(epoch_s) + 1)), epoch_s, x_label="epoch", y_label="s", series=v
            )
            ctx.metric(f"{v}.median_epoch_s", sorted(epoch_s)[len(epoch_s) // 2])
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
