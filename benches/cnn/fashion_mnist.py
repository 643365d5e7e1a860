"""4.06 CNN for Fashion-MNIST.

Trains a small CNN (``models/convnets.py``: conv-BN-ReLU-maxpool x2, Linear head) on
Fashion-MNIST when its four IDX files are found (``--data-dir`` / ``DRILLS_DATA_DIR``), else
on scikit-learn's digits, 1,797 real 8x8 handwritten digits (not clothing: a smaller, easier
real image set, so the accuracy figures below are digits figures);
``harness.data.fashion_images`` picks and scales them. The check writes tiny gzip IDX files
in the Fashion-MNIST layout and reads them back through the task's loader, pixel for pixel,
then trains on the digits to 98% test accuracy; the bench times training and evaluation.

Lesson: on digits a CNN with ~21k parameters passes 98% within a few epochs (a 64-32-10
MLP needs many more to reach 97%): weight sharing and local receptive fields are the right
prior for images even at 8x8 (LeCun et al., "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998, sec. II). On real Fashion-MNIST its authors report 2-layer
CNN baselines around 91-92 % (Xiao et al., "Fashion-MNIST", 2017, benchmark table).
Throughput is dominated by per-step overhead at this size; evaluation runs several times
faster per image than training (no backward, no optimizer, large batches).
"""

from __future__ import annotations

import dataclasses

import torch

from harness import TrainingRun, task
from harness.claims import metric
from harness.data import read_idx_images, write_mnist
from harness.data.fashion_images import FashionData, load_fashion_or_digits
from harness.mutants import Mutant
from harness.trained import Recipe, epochs_to_accuracy, expect_accuracy, forward_prepared
from models.convnets import SmallCNN, small_cnn_preset


@dataclasses.dataclass(frozen=True)
class FashionConfig:
    """Training budget of the Fashion-MNIST (or embedded digits) CNN."""

    epochs: int = 6
    """passes over the training images"""
    batch_size: int = 64
    """images per optimizer step"""
    lr: float = 3e-3
    """Adam learning rate"""
    target_accuracy: float = 0.98
    """test accuracy for time-to-accuracy (and the check's threshold), in [0, 1]"""
    eval_batch: int = 256
    """images per forward pass when timing evaluation"""

    def label(self) -> str:
        return f"epochs={self.epochs},batch={self.batch_size}"


def make_model(data: FashionData, device, dtype) -> SmallCNN:
    size = data.train[0].shape[-1]
    return SmallCNN(small_cnn_preset(data.model_preset, image_size=size)).to(device, dtype)


# -- wrong versions (mutants): loaders -----------------------------------------------------


def _ignores(data_dir=None, device="cpu"):
    return load_fashion_or_digits(None, device)  # never looks in data_dir


def _wrong_scale(data_dir=None, device="cpu"):
    d = load_fashion_or_digits(data_dir, device)
    return dataclasses.replace(d, train=(d.train[0] * 255 / 256, d.train[1]))  # divides by 256, not 255


@task("cnn.fashion_mnist", seed="4.06", title="CNN for Fashion-MNIST")
class FashionMNIST(TrainingRun):
    __doc__ = __doc__
    sizes = {"tiny": FashionConfig(), "cpu": FashionConfig(epochs=8), "gpu": FashionConfig(epochs=15, batch_size=128)}
    #: the data path under test (the mutants swap in broken ones)
    loader = staticmethod(load_fashion_or_digits)
    metrics = {
        "epochs_to_accuracy": "epochs (fractional) until test accuracy first reached the target",
        "eval_over_train_images_per_s": "images/s of evaluation / of training steps (per-image cost ratio)",
    }
    claims = (
        metric("epochs_to_accuracy", "<=", 3, text="the CNN passes 98 % on the digits within 3 epochs"),
        metric("eval_over_train_images_per_s", ">=", 3, text="evaluation handles >= 3x the images/s of training"),
    )
    mutants = (
        Mutant(
            "ignores_idx_files",
            "loader never looks in the data folder",
            {"loader": staticmethod(_ignores)},
            match="IDX files",
        ),
        Mutant("wrong_pixel_scale", "pixels divided by 256", {"loader": staticmethod(_wrong_scale)}, match="pixels"),
        Mutant(
            "does_not_learn", "learning rate 0", {"sizes": {"tiny": FashionConfig(lr=0.0, epochs=1)}}, match="accuracy"
        ),
    )

    def check(self, ctx):
        # the IDX path: tiny files in the real layout, read back through the loader
        root, g, written = ctx.workdir / "fashion_mnist", ctx.generator(1), {}
        for split, n in (("train", 12), ("test", 5)):
            images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
            written[split] = (images, torch.randint(0, 10, (n,), generator=g))
            write_mnist(root, split, *written[split])
        data = self.loader(ctx.workdir)
        ctx.expect(
            data.model_preset == "fashion" and "Fashion-MNIST" in data.description,
            f"IDX files in {root} were not picked up: {data.description}",
            name="IDX files found",
        )
        for (x, y), split in ((data.train, "train"), (data.test, "test")):
            ctx.assert_close(x, written[split][0].float().div(255).unsqueeze(1), name=f"IDX {split} pixels")
            ctx.assert_close(y, written[split][1], name=f"IDX {split} labels")
        ctx.expect_raises(
            ValueError,
            lambda: read_idx_images(root / "train-labels-idx1-ubyte.gz"),
            match="magic",
            name="labels file read as images is refused",
        )
        out = make_model(data, ctx.device, ctx.dtype)(data.train[0].to(ctx.device, ctx.dtype))
        why = f"28x28 model output {tuple(out.shape)} != (12, 10)"
        ctx.expect(tuple(out.shape) == (12, 10), why, name="28x28 forward shape")
        super().check(ctx)  # the harness trains the recipe, then properties() and summarize()

    def train_data(self, ctx, config):
        self.data = self.loader(device=ctx.device)  # kept: recipe() sizes the model for it
        return self.data.train, self.data.test

    def recipe(self, ctx, config) -> Recipe:
        model = make_model(self.data, ctx.device, ctx.dtype)
        return Recipe(model, lambda params: torch.optim.Adam(params, lr=config.lr))

    def properties(self, ctx, run):
        expect_accuracy(ctx, run, run.config.target_accuracy, name="trains to the target accuracy")

    def summarize(self, ctx, run):
        ctx.note(f"trained on {self.data.description}")
        if (epochs := epochs_to_accuracy(run)) is not None:
            ctx.metric("epochs_to_accuracy", epochs)

    def bench(self, ctx):
        step = super().bench(ctx)["train_step"]  # the harness trains (curves, time to target), times a step
        config = ctx.configs[0]
        model = make_model(self.data, ctx.device, ctx.dtype)  # eval time does not depend on the weights
        xe = self.data.test[0][: config.eval_batch].to(ctx.dtype)
        ev = ctx.measure("eval", forward_prepared(model, xe, "images"), config=f"eval batch {xe.shape[0]}")
        per_image = (step.median_ms / config.batch_size) / (ev.median_ms / xe.shape[0])
        ctx.metric("eval_over_train_images_per_s", per_image)
