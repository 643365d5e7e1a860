"""4.01 CNN for CIFAR-10.

A small CNN (``models/convnets.py``: three conv-BN-ReLU-maxpool stages) trains on CIFAR-10's
python batches when found (``--data-dir`` / ``DRILLS_DATA_DIR``), else on the SYNTHETIC
stand-in ``harness.data.synthetic_cifar`` (class-coloured stripes with per-image phase,
jitter and noise): far easier, so its accuracy says only that the pipeline learns, while
throughput carries over (it depends on shapes, not pixels); the notes say which was used.
The check writes a tiny ``cifar-10-batches-py`` tree, reads it back through the task's
loader and trains on the stand-in to well above chance.

Lesson: per-channel normalisation and BN let a 3-stage CNN learn within one epoch. A
training step costs about 3x a forward pass per image: the backward pass computes the
gradients of the input and of the weights, each about the cost of the forward ("backward ~
2x forward", e.g. Kaplan et al., "Scaling Laws for Neural Language Models", 2020, sec. 2.1:
training ~ 6N FLOPs per token against 2N for the forward). Small batches leave a CPU's
cores under-used.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from harness import TrainingRun, task
from harness.claims import metric
from harness.data import DataFormatError, write_cifar10
from harness.data.cifar_images import load_images, to_tensors
from harness.mutants import Mutant
from harness.trained import Budget, Recipe, default_budget, expect_accuracy, forward_prepared
from kernels.vision.wrong_inputs import hides_truncation, hwc_order, ignores_batches
from models.convnets import SmallCNN, small_cnn_preset


@dataclasses.dataclass(frozen=True)
class CifarConfig:
    """Data size, model and training budget."""

    model: str = "cifar_tiny"
    """SmallCNN preset (models/convnets.py)"""
    n_train: int | None = 800
    """training images (synthetic count, or a cap on the real 50,000; None = all)"""
    n_test: int | None = 400
    """test images (synthetic count, or a cap on the real 10,000; None = all)"""
    epochs: int = 2
    """passes over the training images"""
    batch_size: int = 64
    """images per optimizer step"""
    lr: float = 3e-3
    """Adam learning rate"""
    target_accuracy: float = 0.5
    """test accuracy for time-to-accuracy, in [0, 1] (the check's threshold at tiny size)"""
    eval_batch: int = 256
    """images per forward pass when timing evaluation"""

    def label(self) -> str:
        return f"{self.model},n={self.n_train},epochs={self.epochs},batch={self.batch_size}"


# -- wrong versions (mutants): loaders a learner writes (kernels/vision/wrong_inputs.py) ----

#: (mutant, what is wrong, the loader, text of the failure that must catch it)
_WRONG_LOADERS = (
    ("ignores_batches", "the loader never looks in the data folder", ignores_batches, "not used"),
    ("hwc_pixel_order", "rows reshaped as (32, 32, 3) instead of (3, 32, 32)", hwc_order, "pixels"),
    ("hides_truncated_file", "a malformed batch falls back to the stand-in silently", hides_truncation, "truncated"),
)
_LR0 = {"sizes": {"tiny": CifarConfig(lr=0.0, epochs=1)}}  # the weights never move


@task("cnn.cifar10_cnn", seed="4.01", title="CNN for CIFAR-10")
class Cifar10CNN(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": CifarConfig(),
        "cpu": CifarConfig(model="cifar_small", n_train=1536, n_test=512, epochs=2, target_accuracy=0.9),
        "gpu": CifarConfig(
            model="cifar", n_train=None, n_test=None, epochs=15, batch_size=128, lr=2e-3, target_accuracy=0.75
        ),
    }
    metrics = {
        "final_accuracy": "test accuracy after the last epoch, in [0, 1]",
        "train_forward_cost_ratio": "median time of a training step / of a forward pass, same batch, x",
    }
    claims = (
        metric(
            "final_accuracy", ">=", 0.75, text="the 3-stage CNN reaches >= 75 % test accuracy (real CIFAR-10 on a GPU)"
        ),
        metric(
            "train_forward_cost_ratio",
            "<=",
            4.0,
            text="a training step costs <= 4x a forward pass over the same batch (backward ~ 2x forward)",
        ),
    )
    #: the loading path under test: (n_train, n_test, data_dir) -> (train, test, description)
    loader = staticmethod(load_images)
    mutants = (
        *(Mutant(name, what, {"loader": staticmethod(fn)}, match=match) for name, what, fn, match in _WRONG_LOADERS),
        Mutant("does_not_learn", "learning rate 0: the weights never move", _LR0, match="test accuracy"),
    )

    def check(self, ctx):
        config, g = ctx.configs[0], ctx.generator(1)
        train = (torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(10) % 10)
        test = (torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8), torch.tensor([3, 1, 4, 1]))
        classes = tuple(f"written_{i}" for i in range(10))
        folder = write_cifar10(ctx.workdir / "cifar10", train, test, classes)
        load = functools.partial(self.loader, config.n_train, config.n_test, ctx.workdir)
        tr, te, desc = load()
        ctx.expect("real python batches" in desc, f"batches in {folder} not used: {desc}", name="CIFAR batches found")
        for got, want, split in ((tr, train, "train"), (te, test, "test")):
            for what, a, b in (("pixels", got.images, want[0]), ("labels", got.labels, want[1])):
                same = torch.equal(a, b)
                ctx.expect(same, f"CIFAR {split} {what} differ from those written", name=f"CIFAR {split} {what}")
        why = f"class names {tr.classes} != {classes}"
        ctx.expect(tr.classes == classes, why, name="class names from batches.meta")
        (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:500])
        ctx.expect_raises(DataFormatError, load, match="data_batch_3", name="truncated batch refused, naming the file")
        super().check(ctx)  # the harness trains the recipe: properties() below

    def train_data(self, ctx, config):
        tr, te, self.description = self.loader(config.n_train, config.n_test)
        ctx.note(f"data: {self.description}")
        train, self.test = to_tensors(tr, te, ctx.device, ctx.dtype)
        return train, self.test

    def budget(self, config) -> Budget:
        per_epoch = (config.n_train or 50_000) // config.batch_size  # four evaluations per epoch
        return dataclasses.replace(default_budget(config), eval_every=max(1, per_epoch // 4))

    def recipe(self, ctx, config) -> Recipe:
        model = SmallCNN(small_cnn_preset(config.model))
        return Recipe(model, lambda params: torch.optim.Adam(params, lr=config.lr))

    def properties(self, ctx, run):
        why = f" (chance 0.1) on {self.description}"
        expect_accuracy(ctx, run, run.config.target_accuracy, name="trains above chance", why=why)

    def bench(self, ctx):
        config = ctx.configs[0]
        run = self.train(ctx, config)  # the harness's loop: curves, samples/s, time to target
        run.log.record(ctx)
        step = ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        xt = self.test[0]  # (N, 3, 32, 32); timed on the trained model
        fwd = ctx.measure("forward", forward_prepared(run.model, xt[: config.batch_size], "images"), config=config)
        ctx.metric("train_forward_cost_ratio", step.median_ms / fwd.median_ms)
        xe = xt[: config.eval_batch]
        ctx.measure("eval", forward_prepared(run.model, xe, "images"), config=f"eval batch {xe.shape[0]}")
