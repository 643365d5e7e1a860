"""4.04 CNN with data augmentation.

Compared: the same small CNN trained on the same seed and budget with and without the standard
CIFAR augmentation (``kernels/vision/augment.py``: zero-pad 4 px, random crop of the original
size, left-right flip with probability 0.5; He et al. 2016 Sec. 4.2, torchvision's
``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``), done on the whole batch with tensor
indexing. Data: CIFAR-10 python batches when found, else the SYNTHETIC stripes stand-in (the
notes say which), where a mirror turns a stripe orientation theta into pi - theta: a flip is not
quite label-preserving there (colours still tell the classes apart); a mirrored car is a car.

Lesson: crop + flip is a gather over the batch, O(N*C*H*W), a small fraction of a training step,
so augmentation is nearly free in throughput (the claims); its price is paid in convergence: the
training loss falls more slowly because the task got harder, which is the point: less
overfitting on small data (Krizhevsky et al., "ImageNet Classification with Deep Convolutional
Neural Networks", 2012, sec. 4.1, call such transformations "in effect, computationally free").
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.checks import expect_seeded
from harness.claims import metric, time_ratio
from harness.data.cifar_images import load_images_sized
from harness.mutants import Mutant
from harness.train import transformed_step
from harness.trained import Budget, Recipe, default_budget, expect_learns, variant
from harness.ztest import expect_z, z_binomial
from kernels.vision import augment
from kernels.vision.wrong_inputs import augment_ops, crop_without_padding, flips_labels, global_rng, shifted_crop
from models.convnets import SmallCNN, small_cnn_preset


@dataclasses.dataclass(frozen=True)
class AugConfig:
    """Data, model and budget of the with/without-augmentation comparison."""

    image_size: int = 16
    """image side in pixels (32 for CIFAR; the tiny preset uses 16 px synthetic images)"""
    padding: int = 2
    """pixels of zero padding on each side before the random crop (4 at 32 px)"""
    flip_p: float = 0.5
    """probability of a left-right flip per image"""
    n_train: int = 512
    """training images"""
    n_test: int = 256
    """test images"""
    batch_size: int = 32
    """images per optimizer step"""
    steps: int = 24
    """optimizer steps per variant"""
    lr: float = 3e-3
    """Adam learning rate"""

    def label(self) -> str:
        return f"{self.image_size}px,pad={self.padding},batch={self.batch_size}"


@task("cnn.augmentation", seed="4.04", title="CNN with data augmentation")
class Augmentation(Comparison):
    __doc__ = __doc__
    sizes = {
        "tiny": AugConfig(),
        "cpu": AugConfig(image_size=32, padding=4, n_train=2048, n_test=512, batch_size=64, steps=48),
        "gpu": AugConfig(image_size=32, padding=4, n_train=50000, n_test=10000, batch_size=128, steps=4000),
    }
    #: the augmentation functions under test (kernels/vision/augment.py; the mutants swap in broken ones)
    ops = augment
    metrics = {"augment_share": "median time of the augmentation alone / of a training step without it"}
    claims = (
        time_ratio("augment", to="no_augment", at_most=1.25, text="a training step with crop + flip <= 1.25x without"),
        metric("augment_share", "<=", 0.2, text="the batch augmentation alone costs <= 20 % of a training step"),
    )
    mutants = tuple(
        Mutant(name, what, {"ops": augment_ops(**replace)}, match=match)
        for name, what, replace, match in (
            ("flips_labels", "the label changes with the flip", {"augment_batch": flips_labels}, "labels"),
            ("ignores_seed", "draws from a fresh seed", {"augment_batch": global_rng}, "same seed"),
            ("vertical_flip", "flips up-down", {"hflip": lambda x: x.flip(-2)}, "mirror"),
            ("crop_off_by_one", "window shifted one pixel", {"crop_with_padding": shifted_crop}, "pad-then-slice"),
            ("crop_without_padding", "zooms", {"crop_with_padding": crop_without_padding}, "pad-then-slice"),
        )
    )

    def augment_fn(self, x, y, g, config):
        return self.ops.augment_batch(x, y, g, padding=config.padding, flip_p=config.flip_p)

    def check(self, ctx):
        config, p = ctx.configs[0], ctx.configs[0].padding
        x, y = torch.randn(64, 3, 9, 7, generator=ctx.generator(1)).to(ctx.device, ctx.dtype), torch.arange(64) % 10
        a1, l1 = expect_seeded(ctx, lambda g: self.augment_fn(x, y, g, config), "augmented images")
        why = f"augmented batch {tuple(a1.shape)} {a1.dtype} != input {tuple(x.shape)} {x.dtype}"
        ctx.expect(a1.shape == x.shape and a1.dtype == x.dtype, why, name="shape and dtype kept")
        ctx.expect(torch.equal(l1, y), "augmentation changed the labels", name="label-preserving")
        twice = torch.equal(self.ops.hflip(self.ops.hflip(x)), x)
        ctx.expect(twice, "hflip twice is not the identity", name="flip twice = identity")
        mirrored = x[..., torch.arange(x.shape[-1] - 1, -1, -1, device=x.device)]  # out[..., j] = x[..., W-1-j]
        ctx.expect(torch.equal(self.ops.hflip(x), mirrored), "hflip is not a left-right mirror", name="hflip mirrors")
        for prob, want in ((1.0, self.ops.hflip(x)), (0.0, x)):
            got, _ = self.ops.random_flip(x, torch.Generator().manual_seed(0), prob)
            ctx.expect(torch.equal(got, want), f"random_flip(p={prob}) wrong", name=f"flip p={prob}")
        _, flipped = self.ops.random_flip(torch.zeros(4096, 1, 1, 2), torch.Generator().manual_seed(ctx.rng_seed), 0.5)
        expect_z(ctx, "flip rate (binomial z-test)", z_binomial(int(flipped.sum()), 4096, 0.5), where="4,096 images")
        offsets = self.ops.crop_offsets(x.shape[0], p, torch.Generator().manual_seed(3))
        crops = self.ops.crop_with_padding(x, offsets, p)
        want = augment.crop_by_slicing(x, offsets, p)  # each image padded, then sliced at its offsets
        ctx.expect(torch.equal(crops, want), "crop_with_padding differs from pad-then-slice", name="crop windows")
        centre = self.ops.crop_with_padding(x, torch.full((x.shape[0], 2), p), p)
        ctx.expect(torch.equal(centre, x), "the centred crop is not the image itself", name="centred crop = identity")
        super().check(ctx)  # the harness trains both on one seed, data stream and budget

    def train_data(self, ctx, config):
        tr, te, desc = load_images_sized(config.image_size, config.n_train, config.n_test, ctx.rng_seed)
        ctx.note(f"data: {desc}")
        mean = tr.images.to(ctx.dtype).mean(dim=(0, 2, 3), keepdim=True) / 255  # (1, 3, 1, 1)
        # scaled and centred per channel: the zero padding is then the mean colour
        return tuple((s.images.to(ctx.dtype) / 255 - mean, s.labels) for s in (tr, te))

    def budget(self, config) -> Budget:  # six evaluations over the budget
        return dataclasses.replace(default_budget(config), eval_every=max(1, config.steps // 6))

    @variant
    def no_augment(self, ctx, config) -> Recipe:
        model = SmallCNN(small_cnn_preset("cifar_tiny", image_size=config.image_size))
        return Recipe(model, lambda params: torch.optim.Adam(params, lr=config.lr))

    @variant
    def augment(self, ctx, config) -> Recipe:  # the same CNN and optimizer, trained on augmented batches
        g = ctx.generator(10)  # the augmentation's own stream: the batch order stays the harness's
        step = transformed_step(lambda x, y: self.augment_fn(x, y, g, config))
        return dataclasses.replace(self.no_augment(ctx, config), step_fn=step)

    def properties(self, ctx, runs):
        for run in runs.values():
            expect_learns(ctx, run, ratio=1.0, window=3)

    def bench(self, ctx):
        config, n, g = ctx.configs[0], ctx.configs[0].batch_size, ctx.generator(5)
        ms = super().bench(ctx)  # curves, comparison table, a training step per variant
        tr, _, desc = load_images_sized(config.image_size, config.n_train, config.n_test, ctx.rng_seed)
        x, y = tr.images[:n].to(ctx.device, ctx.dtype) / 255, tr.labels[:n]  # (n, 3, S, S) in [0, 1]: padding black
        alone = Prepared(fn=lambda: self.augment_fn(x, y, g, config), items=n, item_unit="images")
        only = ctx.measure("augment only", alone, config=f"{config.label()} augmentation alone")
        ctx.metric("augment_share", only.median_ms / ms["no_augment"].median_ms)
        draws = [self.augment_fn(x[:8], y[:8], ctx.generator(20 + i), config)[0] for i in range(3)]
        cap = f"top row: 8 training images ({desc.split(':')[0]}); below: three random crop + flip draws"
        ctx.image("augmented samples", torch.cat([x[:8], *draws]).cpu(), nrow=8, vmin=0.0, vmax=1.0, caption=cap)
