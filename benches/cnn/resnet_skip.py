"""4.03 ResNet-like skip connections.

Compared: a CIFAR ResNet (``models/convnets.py``: 3x3 stem, stages of basic blocks, global
average pool, fc; He et al., CVPR 2016) against the "plain" net of the same depth and
widths, i.e. the same blocks with the shortcut removed (He et al. Sec. 4.1 compare the
two the same way), trained on the same seed and data.

Checked:

* block shapes: basic and bottleneck blocks, stride 1 and 2, channel changes, odd sizes:
  (N, Cin, H, W) -> (N, width*expansion, ceil(H/s), ceil(W/s));
* identity at zero init: with the last BN gamma of the residual branch set to zero
  (``zero_init_residual``, Goyal et al. 2017 Sec. 5.1) a block computes exactly
  relu(x) (identity shortcut) or relu(downsample(x)), in train and eval mode;
* the gradient reaches the first conv of a 14-layer net (finite, non-zero norm) for both
  variants; the ratio of first-conv gradient norms residual/plain is recorded;
* both variants train: loss falls on the synthetic CIFAR stand-in (curves per variant).

Bench: training and evaluation images/s of both; first-conv gradient norm at init against
depth (8 to 56 layers); curves after an equal budget (synthetic stand-in, so noted).

Lesson: the shortcut costs almost nothing (one add per block) and changes what the net
computes at init: with zero-init every block starts as relu(shortcut(x)), so a deep net
starts as a shallow one. The plain net's gradient does not vanish with BN in every block
(He et al. say as much); it explodes with depth, while the zero-init ResNet's stays flat
(gradient explosion of deep BN nets at init: Yang et al., "A Mean Field Theory of Batch
Normalization", ICLR 2019). The same budget then trains the ResNet far better; the claims
state each of these on the run's own numbers.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data import synthetic_cifar
from harness.mutants import Mutant
from harness.trained import Budget, Recipe, default_budget, expect_learns, variant
from models.convnets import BasicBlock, Bottleneck, ResNet, ResNetConfig


@dataclasses.dataclass(frozen=True)
class SkipConfig:
    """Net shape and training budget for the residual-vs-plain comparison."""

    widths: tuple[int, ...] = (8, 16, 32)
    """block width per stage (channels)"""
    layers: tuple[int, ...] = (3, 3, 3)
    """basic blocks per stage; depth = 2 * sum(layers) + 2"""
    image_size: int = 16
    """input side in pixels (synthetic CIFAR-style images)"""
    n_train: int = 512
    """training images"""
    batch_size: int = 32
    """images per optimizer step"""
    steps: int = 20
    """optimizer steps per variant"""
    lr: float = 0.05
    """SGD learning rate (momentum 0.9)"""
    grad_depths: tuple[int, ...] = ()
    """depths (layers) at which the bench measures the first-conv gradient norm at init"""

    @property
    def depth(self) -> int:
        return 2 * sum(self.layers) + 2

    def label(self) -> str:
        return f"depth={self.depth},widths={self.widths},{self.image_size}px,batch={self.batch_size}"


def _depth_layers(depth: int) -> tuple[int, int, int]:
    n = (depth - 2) // 6  # CIFAR ResNet-(6n+2)
    return (n, n, n)


# -- wrong versions (mutants) ------------------------------------------------------------


class NoShortcut(BasicBlock):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class WrongZeroInit(BasicBlock):
    def last_bn(self):  # zero-inits the first BN: the block is not relu(shortcut) at init
        return self.bn1


class CutsGradient(BasicBlock):
    def forward(self, x):
        return super().forward(x.detach())


class IgnoresStride(Bottleneck):
    def __init__(self, cin, width, stride=1, residual=True):
        super().__init__(cin, width, 1, residual)


@task("cnn.resnet_skip", seed="4.03", title="ResNet-like skip connections")
class ResNetSkip(Comparison):
    __doc__ = __doc__
    sizes = {
        "tiny": SkipConfig(layers=(2, 2, 2), steps=16),
        "cpu": SkipConfig(image_size=16, n_train=1024, batch_size=32, steps=40, grad_depths=(8, 14, 20, 32, 56)),
        "gpu": SkipConfig(
            widths=(16, 32, 64),
            layers=(9, 9, 9),
            image_size=32,
            n_train=20000,
            batch_size=128,
            steps=1000,
            grad_depths=(8, 20, 56, 110),
        ),
    }
    #: block classes under test (the mutants swap in broken ones)
    blocks = {"basic": BasicBlock, "bottleneck": Bottleneck}
    metrics = {
        "resnet_minus_plain_accuracy": "test accuracy of the ResNet minus the plain net's after the same budget",
        "plain.grad_norm_growth": "plain net: first-conv gradient norm at init, deepest / shallowest depth",
        "resnet.grad_norm_growth": "ResNet: first-conv gradient norm at init, deepest / shallowest depth",
    }
    claims = (
        metric("resnet_minus_plain_accuracy", ">=", 0.2, text="same budget: ResNet >= 20 points above the plain net"),
        metric("plain.grad_norm_growth", ">=", 10, text="the plain net's init gradient grows >= 10x with depth"),
        metric("resnet.grad_norm_growth", "<=", 2, text="the zero-init ResNet's init gradient stays within 2x"),
        time_ratio("resnet", to="plain", at_most=1.15, config="eval", text="the shortcut adds <= 15 % to a forward"),
    )
    mutants = tuple(
        Mutant(name, what, {"blocks": {"basic": BasicBlock, "bottleneck": Bottleneck, **swap}}, match=match)
        for name, what, swap, match in (
            ("no_shortcut", "a block without its shortcut", {"basic": NoShortcut}, "zero init"),
            ("zero_init_wrong_bn", "zero-init on the first BN", {"basic": WrongZeroInit}, "zero init"),
            ("cuts_gradient", "the block detaches its input", {"basic": CutsGradient}, "first conv gradient"),
            ("ignores_stride", "the bottleneck ignores its stride", {"bottleneck": IgnoresStride}, "designed"),
        )
    )

    def model(self, ctx, config, variant, layers=None, seed_offset=0):
        cfg = ResNetConfig(
            layers=layers or config.layers,
            widths=config.widths,
            residual=variant == "resnet",
            zero_init_residual=variant == "resnet",
        )
        torch.manual_seed(ctx.rng_seed + seed_offset)
        return ResNet(cfg, block=self.blocks["basic"]).to(ctx.device, ctx.dtype)

    def check(self, ctx):
        g = ctx.generator()
        x = torch.randn(2, 8, 9, 7, generator=g).to(ctx.device, ctx.dtype)  # odd sizes: ceil(H/2)
        for kind, cin, width, stride in (
            ("basic", 8, 8, 1),
            ("basic", 8, 16, 2),
            ("bottleneck", 8, 2, 1),
            ("bottleneck", 8, 4, 2),
        ):
            block = self.blocks[kind](cin, width, stride).to(ctx.device, ctx.dtype)
            name = f"{kind}({cin}->{width * block.expansion}, stride {stride})"
            want = (2, width * block.expansion, -(-9 // stride), -(-7 // stride))
            out = block(x)
            ctx.expect(
                tuple(out.shape) == want, f"{name}: output {tuple(out.shape)}, designed {want}", name=f"{name} shape"
            )
            torch.nn.init.zeros_(block.last_bn().weight)
            for mode in ("train", "eval"):
                block.train(mode == "train")
                with torch.no_grad():
                    short = x if block.downsample is None else block.downsample(x)
                    ctx.assert_close(
                        block(x), torch.relu(short), name=f"{name} == relu(shortcut) at zero init", where=mode
                    )

        batch = synthetic_cifar(16, seed=ctx.rng_seed, image_size=16)
        xb = (batch.images.to(ctx.dtype) / 255 - 0.5).to(ctx.device)
        norms = {}
        for arm in ("plain", "resnet"):
            net = self.model(ctx, ctx.configs[0], arm)
            F.cross_entropy(net(xb), batch.labels.to(ctx.device)).backward()
            grad = net.conv1.weight.grad  # None when no path from the loss reaches it
            norms[arm] = 0.0 if grad is None else float(grad.norm())
            ctx.expect(
                0 < norms[arm] < float("inf"),
                f"{arm}: first conv gradient norm {norms[arm]} (must be finite and > 0)",
                name=f"{arm}: gradient reaches the first conv",
            )
        ctx.metric("first_conv_grad_norm_ratio_resnet_over_plain", norms["resnet"] / norms["plain"])
        super().check(ctx)  # the harness trains both on one seed, data stream and budget

    def train_data(self, ctx, config):
        data = synthetic_cifar(config.n_train + 512, seed=ctx.rng_seed, image_size=config.image_size)
        ctx.note(f"data: {data.description}")
        x, y = data.images.to(ctx.dtype) / 255 - 0.5, data.labels  # (N, 3, S, S)
        return (x[: config.n_train], y[: config.n_train]), (x[config.n_train :], y[config.n_train :])

    def budget(self, config) -> Budget:  # five evaluations over the budget
        return dataclasses.replace(default_budget(config), eval_every=max(1, config.steps // 5))

    def _net(self, ctx, config, residual: bool) -> Recipe:
        net = self.model(ctx, config, "resnet" if residual else "plain")
        return Recipe(net, lambda params: torch.optim.SGD(params, lr=config.lr, momentum=0.9))

    @variant
    def plain(self, ctx, config) -> Recipe:
        return self._net(ctx, config, residual=False)

    @variant
    def resnet(self, ctx, config) -> Recipe:
        return self._net(ctx, config, residual=True)

    def properties(self, ctx, runs):
        for run in runs.values():
            expect_learns(ctx, run, ratio=1.0, window=3)

    def summarize(self, ctx, runs):
        ctx.metric("resnet_minus_plain_accuracy", runs["resnet"].log.final_accuracy - runs["plain"].log.final_accuracy)

    def bench(self, ctx):
        config = ctx.configs[0]
        super().bench(ctx)  # curves, comparison table, a training step per arm
        for arm in self.variants:
            net = self.model(ctx, config, arm).eval()
            xe = torch.randn(4 * config.batch_size, 3, config.image_size, config.image_size, generator=ctx.generator(4))
            xe = xe.to(ctx.device, ctx.dtype)
            ctx.measure(
                arm,
                Prepared(fn=torch.no_grad()(lambda net=net: net(xe)), items=xe.shape[0], item_unit="images"),
                config=f"eval depth={config.depth} batch {xe.shape[0]}",
            )
        xb = torch.randn(16, 3, config.image_size, config.image_size, generator=ctx.generator(5))
        yb = torch.randint(0, 10, (16,), generator=ctx.generator(5))
        xb, yb = xb.to(ctx.device, ctx.dtype), yb.to(ctx.device)
        for arm in self.variants if config.grad_depths else ():  # the tiny preset sweeps no depths
            norms = []
            for depth in config.grad_depths:
                net = self.model(ctx, config, arm, layers=_depth_layers(depth))
                F.cross_entropy(net(xb), yb).backward()
                norms.append(float(net.conv1.weight.grad.norm()))
            kw = {"x_label": "depth (layers)", "y_label": "||dL/dW conv1||", "series": arm, "log_y": True}
            ctx.curve("first-conv gradient norm at init", list(config.grad_depths), norms, **kw)
            ctx.metric(f"{arm}.grad_norm_growth", max(norms) / norms[0])
