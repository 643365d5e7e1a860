"""4.01 CNN for CIFAR-10.

Trains a small CNN (``models/convnets.py``: three conv-BN-ReLU-maxpool stages) on CIFAR-10
when the python batches are found (``--data-dir`` / ``DRILLS_DATA_DIR`` holding
``cifar-10-batches-py``, read by ``harness.data.cifar_images.load_images``). Without them it
trains on a SYNTHETIC stand-in, ``harness.data.synthetic_cifar``: 3x32x32 images whose class
sets two colours and a stripe orientation/frequency, with per-image phase, jitter and
noise. The stand-in is far easier than CIFAR-10 (near 100% is reachable), so accuracy
figures from it say only that the pipeline learns; throughput figures carry over, as
they depend on shapes, not pixels. The run record's notes say which data was used.

Checked: the CIFAR loading path parses real-format python batches (the check writes a tiny
``cifar-10-batches-py`` tree with ``harness.data.write_cifar10`` into its work folder,
reads it back through the task's loader and compares pixels, labels and class names
exactly; a truncated batch is refused with an error naming the file); the CNN trains on
the stand-in to well above chance (>= 50% for 10 classes) in the tiny budget.

Bench: training and evaluation images/s, the cost of a training step relative to a
forward pass over the same batch, and the time to the target accuracy (on a GPU with the
full real data set: 75%).

Lesson: per-channel normalisation and BN let a 3-stage CNN learn within one epoch. A
training step costs about 3x a forward pass per image, because the backward pass computes
two products per layer (the gradients of the input and of the weights), each about the
cost of the forward one (the usual "backward ~ 2x forward" rule, e.g. Kaplan et al.,
"Scaling Laws for Neural Language Models", 2020, sec. 2.1: training ~ 6N FLOPs per token
against 2N for the forward). Small batches leave a CPU's cores under-used.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import DataFormatError, write_cifar10
from harness.data.cifar_images import load_images, to_tensors
from harness.mutants import Mutant
from harness.trained import Budget, Recipe, default_budget
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


# -- wrong versions (mutants): loaders a learner writes ------------------------------------


def _ignores_batches(n_train, n_test, data_dir=None):
    return load_images(n_train, n_test, None)  # never looks in data_dir


def _hwc_order(n_train, n_test, data_dir=None):
    tr, te, d = load_images(n_train, n_test, data_dir)
    # rows read as (32, 32, 3) instead of (3, 32, 32): the classic CIFAR reshape bug
    fix = lambda s: dataclasses.replace(s, images=s.images.reshape(-1, 32, 32, 3).permute(0, 3, 1, 2))  # noqa: E731 (a one-line helper)
    return fix(tr), fix(te), d


def _hides_truncation(n_train, n_test, data_dir=None):
    try:
        return load_images(n_train, n_test, data_dir)
    except ValueError:
        return load_images(n_train, n_test, None)  # falls back silently


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
        Mutant(
            "ignores_batches",
            "the loader never looks in the data folder",
            {"loader": staticmethod(_ignores_batches)},
            match="not used",
        ),
        Mutant(
            "hwc_pixel_order",
            "rows reshaped as (32, 32, 3) instead of (3, 32, 32)",
            {"loader": staticmethod(_hwc_order)},
            match="pixels",
        ),
        Mutant(
            "hides_truncated_file",
            "a malformed batch falls back to the stand-in silently",
            {"loader": staticmethod(_hides_truncation)},
            match="truncated",
        ),
        Mutant(
            "does_not_learn",
            "learning rate 0: the weights never move",
            {"sizes": {"tiny": CifarConfig(lr=0.0, epochs=1)}},
            match="test accuracy",
        ),
    )

    def check(self, ctx):
        config = ctx.configs[0]
        g = ctx.generator(1)
        train = (torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(10) % 10)
        test = (torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8), torch.tensor([3, 1, 4, 1]))
        classes = tuple(f"written_{i}" for i in range(10))
        folder = write_cifar10(ctx.workdir / "cifar10", train, test, classes)
        tr, te, desc = self.loader(config.n_train, config.n_test, ctx.workdir)
        ctx.expect(
            "real python batches" in desc, f"written batches in {folder} not used: {desc}", name="CIFAR batches found"
        )
        for got, want, split in ((tr, train, "train"), (te, test, "test")):
            ctx.expect(
                torch.equal(got.images, want[0]),
                f"CIFAR {split} pixels differ from those written",
                name=f"CIFAR {split} pixels",
            )
            ctx.expect(torch.equal(got.labels, want[1]), f"CIFAR {split} labels differ", name=f"CIFAR {split} labels")
        ctx.expect(
            tr.classes == classes, f"class names {tr.classes} != {classes}", name="class names from batches.meta"
        )
        (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:500])
        ctx.expect_raises(
            DataFormatError,
            lambda: self.loader(config.n_train, config.n_test, ctx.workdir),
            match="data_batch_3",
            name="truncated batch refused, naming the file",
        )

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
        acc, target = run.log.final_accuracy, run.config.target_accuracy
        ctx.expect(
            acc >= target,
            f"test accuracy {acc:.3f} < {target} (chance 0.1) after {run.log.steps[-1]} steps on {self.description}",
            name="trains above chance",
        )

    def bench(self, ctx):
        config = ctx.configs[0]
        run = self.train(ctx, config)  # the harness's loop: curves, samples/s, time to target
        run.log.record(ctx)
        step = ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        model, xt = run.model.eval(), self.test[0]  # (N, 3, 32, 32)
        for label, xe in (("forward", xt[: config.batch_size]), ("eval", xt[: config.eval_batch])):
            fwd = ctx.measure(
                label,
                Prepared(fn=torch.no_grad()(lambda xe=xe: model(xe)), items=xe.shape[0], item_unit="images"),
                config=config if label == "forward" else f"eval batch {xe.shape[0]}",
            )
            if label == "forward":
                ctx.metric("train_forward_cost_ratio", step.median_ms / fwd.median_ms)
