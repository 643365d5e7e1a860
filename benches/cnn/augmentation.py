"""4.04 CNN with data augmentation.

Compared: training the same small CNN with and without the standard CIFAR augmentation
(``kernels/vision/augment.py``: pad 4 px with zeros, take a random crop of the original size,
flip left-right with probability 0.5; He et al. 2016 Sec. 4.2, torchvision's
``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``), done on the whole batch with
tensor indexing, on the same seed and budget.

Checked:
* seeded: the same generator seed gives the same crops, flips and pixels; another seed
  gives others;
* flip: hflip mirrors left-right and twice is the identity (bitwise), p=1 flips every
  image, p=0 none, and over 4,096 images p=0.5 flips a fraction within 5 standard errors
  of 0.5 (binomial, normal approximation; false-failure rate below 1e-6);
* crop with padding keeps the shape; the centred offset returns the image unchanged; every
  crop equals a per-image reference (pad, then slice the window at its offset);
* label-preserving: the augmented batch carries exactly the labels it was given;
* both variants train on the data (loss falls), curves per variant.

Data: CIFAR-10 python batches when ``--data-dir``/``DRILLS_DATA_DIR`` has them, else the
SYNTHETIC stripes stand-in of ``harness.data.synthetic_cifar`` (labelled in the notes). On
the stand-in a flip is not quite label-preserving in meaning: a class is partly defined by
its stripe orientation theta and a mirror turns theta into pi - theta (colours still tell
the classes apart); on CIFAR a mirrored car is still a car. Augmentation is only as
label-preserving as the invariance it assumes.

Bench: images/s of a training step with and without augmentation, images/s of the
augmentation alone, loss and accuracy curves of both after an equal budget.

Lesson: done per batch with indexing, crop + flip costs a small fraction of a training
step (it is a gather over the batch, O(N*C*H*W)), so augmentation is nearly free in
throughput; its price is paid in convergence: the training loss falls more slowly because
the task got harder, which is the point (less overfitting on small data).

Timing note: this machine was shared with other jobs (load average 6-8 on 2 cores). With
2 threads every figure was distorted by OpenMP threads waiting for a descheduled peer
(F.conv2d itself ran 2x slower than with one thread), so the figures below come from
``OMP_NUM_THREADS=1 drills bench --task cnn.augmentation --no-save`` (one thread, torch 2.13 CPU,
float32, AMD EPYC); single runs, +-20% between runs.

32x32 synthetic images, batch 64, ``cifar_tiny``: the augmentation alone 2.6 ms per batch
= 24,180 images/s; training 2,682 images/s with it vs 2,948 without over the 48-step
runs (-9%; the single-step timings were noisy); after 48 steps training loss 0.20 vs
0.135, test accuracy 100% for both (the stand-in is easy). Bench 8 s.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.data import load_cifar10, resolve, synthetic_cifar
from harness.train import fit, standard_step
from kernels.vision import augment
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


def load_data(config: AugConfig, seed: int):
    """(train, test, description): images uint8 (N, 3, S, S), labels int64 (N,)."""
    src = resolve("cifar10")
    if src.kind == "files" and config.image_size == 32:
        tr, te = load_cifar10(src.path, "train"), load_cifar10(src.path, "test")
        tr, te = tr.take(torch.arange(config.n_train)), te.take(torch.arange(config.n_test))
        return tr, te, tr.description
    tr = synthetic_cifar(config.n_train, seed=seed, image_size=config.image_size)
    te = synthetic_cifar(config.n_test, seed=seed + 1, image_size=config.image_size)
    return tr, te, f"SYNTHETIC stand-in for CIFAR-10: {tr.description}"


@task("cnn.augmentation", seed="4.04", title="CNN with data augmentation")
class Augmentation(Comparison):
    __doc__ = __doc__
    variants = ("no_augment", "augment")
    sizes = {
        "tiny": AugConfig(),
        "cpu": AugConfig(image_size=32, padding=4, n_train=2048, n_test=512, batch_size=64, steps=48),
        "gpu": AugConfig(image_size=32, padding=4, n_train=50000, n_test=10000, batch_size=128, steps=4000),
    }
    #: the augmentation functions under test (kernels/vision/augment.py; tests swap in broken ones)
    ops = augment

    def augment_fn(self, x, y, g, config):
        return self.ops.augment_batch(x, y, g, padding=config.padding, flip_p=config.flip_p)

    def check(self, ctx):
        config = ctx.configs[0]
        p = config.padding
        x = torch.randn(64, 3, 9, 7, generator=ctx.generator(1)).to(ctx.device, ctx.dtype)
        y = torch.randint(0, 10, (64,), generator=ctx.generator(1)).to(ctx.device)
        run = lambda seed: self.augment_fn(x, y, torch.Generator().manual_seed(seed), config)  # noqa: E731
        (a1, l1), (a2, _), (a3, _) = run(7), run(7), run(8)
        ctx.expect(torch.equal(a1, a2), "same seed gave different augmented images", name="seeded: same seed")
        ctx.expect(not torch.equal(a1, a3), "seeds 7 and 8 gave identical augmentations", name="seeded: other seed")
        ctx.expect(
            tuple(a1.shape) == tuple(x.shape) and a1.dtype == x.dtype,
            f"augmented batch {tuple(a1.shape)} {a1.dtype} != input {tuple(x.shape)} {x.dtype}",
            name="shape and dtype kept",
        )
        ctx.expect(torch.equal(l1, y), "augmentation changed the labels", name="label-preserving")

        ctx.expect(
            torch.equal(self.ops.hflip(self.ops.hflip(x)), x),
            "hflip twice is not the identity",
            name="flip twice = identity",
        )
        mirrored = x[..., torch.arange(x.shape[-1] - 1, -1, -1, device=x.device)]  # out[..., j] = x[..., W-1-j]
        ctx.expect(torch.equal(self.ops.hflip(x), mirrored), "hflip is not a left-right mirror", name="hflip mirrors")
        for prob, want in ((1.0, self.ops.hflip(x)), (0.0, x)):
            got, _ = self.ops.random_flip(x, torch.Generator().manual_seed(0), prob)
            ctx.expect(torch.equal(got, want), f"random_flip(p={prob}) wrong", name=f"flip p={prob}")
        n = 4096
        _, flipped = self.ops.random_flip(torch.zeros(n, 1, 1, 2), torch.Generator().manual_seed(ctx.rng_seed), 0.5)
        z = abs(flipped.float().mean().item() - 0.5) / math.sqrt(0.25 / n)
        ctx.expect(
            z < 5,
            f"flip rate {flipped.float().mean():.4f} is {z:.1f} standard errors from 0.5",
            name="flip rate (binomial, 5 SE)",
        )

        offsets = self.ops.crop_offsets(x.shape[0], p, torch.Generator().manual_seed(3))
        crops = self.ops.crop_with_padding(x, offsets, p)
        padded = F.pad(x, (p, p, p, p))
        want = torch.stack(
            [padded[i, :, dy : dy + x.shape[2], dx : dx + x.shape[3]] for i, (dy, dx) in enumerate(offsets.tolist())]
        )
        ctx.expect(torch.equal(crops, want), "crop_with_padding differs from pad-then-slice", name="crop windows")
        centre = self.ops.crop_with_padding(x, torch.full((x.shape[0], 2), p), p)
        ctx.expect(torch.equal(centre, x), "the centred crop is not the image itself", name="centred crop = identity")

        self.train_variants(ctx, config, check=True)

    def _data(self, ctx, config):
        tr, te, desc = load_data(config, ctx.rng_seed)
        ctx.note(f"data: {desc}")
        mean = tr.images.to(ctx.dtype).mean(dim=(0, 2, 3), keepdim=True) / 255

        def norm(s):  # scale, centre per channel; the padding (0) then is the mean colour
            return (s.images.to(ctx.dtype) / 255 - mean).to(ctx.device), s.labels.to(ctx.device)

        return norm(tr), norm(te)

    def _model(self, ctx, config):
        torch.manual_seed(ctx.rng_seed)
        return SmallCNN(small_cnn_preset("cifar_tiny", image_size=config.image_size)).to(ctx.device, ctx.dtype)

    def _step_fn(self, ctx, config, variant):
        g = ctx.generator(10)
        if variant == "no_augment":
            return standard_step

        def step(model, opt, x, y, loss_fn):
            xa, ya = self.augment_fn(x, y, g, config)
            return standard_step(model, opt, xa, ya, loss_fn)

        return step

    def train_variants(self, ctx, config, check=False):
        train, test = self._data(ctx, config)
        logs = {}
        for variant in self.variants:
            model = self._model(ctx, config)
            opt = torch.optim.Adam(model.parameters(), lr=config.lr)
            logs[variant] = log = fit(
                model,
                opt,
                train,
                batch_size=config.batch_size,
                epochs=10**6,
                max_steps=config.steps,
                eval_data=test,
                eval_every=max(1, config.steps // 6),
                step_fn=self._step_fn(ctx, config, variant),
                seed=ctx.rng_seed,
            )
            log.record(ctx, series=variant, prefix=f"{variant}.")
            if check:
                first, last = sum(log.losses[:3]) / 3, sum(log.losses[-3:]) / 3
                ctx.expect(
                    last < first, f"{variant}: loss did not fall ({first:.3f} -> {last:.3f})", name=f"{variant} trains"
                )
        return logs

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        g = ctx.generator(3)
        x = torch.randn(config.batch_size, 3, config.image_size, config.image_size, generator=g)
        y = torch.randint(0, 10, (config.batch_size,), generator=g)
        x, y = x.to(ctx.device, ctx.dtype), y.to(ctx.device)
        step = self._step_fn(ctx, config, impl)
        return Prepared(fn=lambda: step(model, opt, x, y, F.cross_entropy), items=config.batch_size, item_unit="images")

    def bench(self, ctx):
        config = ctx.configs[0]
        for variant in self.variants:
            ctx.measure(variant, self.prepare(ctx, variant, config), config=config)
        x = torch.randn(config.batch_size, 3, config.image_size, config.image_size, generator=ctx.generator(4))
        x, y, g = x.to(ctx.device, ctx.dtype), torch.zeros(config.batch_size, dtype=torch.long), ctx.generator(5)
        ctx.measure(
            "augment only",
            Prepared(fn=lambda: self.augment_fn(x, y, g, config), items=config.batch_size, item_unit="images"),
            config=f"{config.label()} augmentation alone",
        )
        logs = self.train_variants(ctx, config)
        ctx.table(
            "after an equal budget",
            [
                {
                    "variant": v,
                    "steps": config.steps,
                    "final_train_loss": round(log.losses[-1], 4),
                    "test_accuracy": round(log.final_accuracy, 4),
                }
                for v, log in logs.items()
            ],
        )
