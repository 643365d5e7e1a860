"""3.02 MNIST without torchvision.

A training run with no torchvision anywhere: ``harness.data.idx`` parses the IDX files
(big-endian header, magic 0x00000803 for images and 0x00000801 for labels, gzip detected by
its magic bytes), pixels are scaled to [0, 1] by hand, and a ``models.mlp.MLP`` trains with
Adam. Data: real MNIST when ``$DRILLS_DATA_DIR`` holds its four IDX files (``drills data
fetch mnist``), else scikit-learn's 1,797 real 8x8 digits (stratified 75/25) written as IDX
files (train gzip-compressed, test raw) and read back through the task's loader, exactly.
The check trains an MLP 64-32-10 (2,410 parameters) 20 epochs to >= 94% test accuracy with
its loss halved: over 20 seeds (each its own split and init) it measured 95.8-98.2%, mean
96.9%; an optimizer that never steps stays near 10%.

Lesson: reading MNIST needs no torchvision: the format is a 4-byte magic, the dimension sizes
and raw bytes (LeCun et al., "THE MNIST DATABASE of handwritten digits", file-format section,
yann.lecun.com/exdb/mnist). A two-layer MLP reaches 97 % test accuracy within a few epochs
(the claims); LeCun et al. list 2-layer MLPs on full MNIST at 95-98 % (same page,
"Classifiers"). At this size a step (~0.3 MFLOP) is bound by Python and dispatch overhead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from harness import TrainingRun, task
from harness.claims import metric
from harness.data import idx
from harness.data.digits_idx import Split, write_digits_as_mnist
from harness.data.sources import resolve
from harness.mutants import Mutant
from harness.train import standard_step
from harness.trained import Recipe, default_budget, epochs_to_accuracy, expect_accuracy, expect_learns
from kernels.vision.wrong_inputs import idx_drops_last, idx_transposed
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class MnistConfig:
    """Model and budget of one training run."""

    hidden: tuple[int, ...]
    """MLP hidden widths (input width comes from the data: 64 for digits, 784 for MNIST)"""
    epochs: int
    """passes over the training split of the embedded digits (1,347 samples)"""
    real_epochs: int
    """passes over real MNIST's 60,000 training images, when those files are present"""
    batch_size: int = 64
    """samples per optimizer step"""
    lr: float = 1e-2
    """Adam learning rate"""
    target_accuracy: float = 0.95
    """test accuracy in [0, 1] the check demands and the bench times to"""

    def label(self) -> str:
        return f"mlp={'x'.join(map(str, self.hidden))},bs={self.batch_size},epochs={self.epochs}"


# -- wrong versions (mutants) ------------------------------------------------------------


def _never_steps(self, model, optimizer, x, y, loss_fn):  # gradients, but no optimizer.step()
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.detach()


_TINY = MnistConfig(hidden=(32,), epochs=20, real_epochs=1, target_accuracy=0.94)
_DROPS_LAST, _TRANSPOSED = {"read_split": idx_drops_last}, {"read_split": idx_transposed}  # wrong IDX readers
_LOW_BAR = {"train_step": _never_steps, "sizes": {"tiny": dataclasses.replace(_TINY, target_accuracy=0.01)}}


@task("nn_basics.mnist_no_torchvision", seed="3.02", title="MNIST without torchvision")
class MnistNoTorchvision(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": _TINY,
        "cpu": MnistConfig(hidden=(128, 64), epochs=30, real_epochs=3, target_accuracy=0.97),
        "gpu": MnistConfig(hidden=(512, 256), epochs=30, real_epochs=10, batch_size=256, lr=3e-3, target_accuracy=0.97),
    }
    metrics = {
        "final_accuracy": "test accuracy after the last epoch, in [0, 1]",
        "epochs_to_accuracy": "epochs (fractional) until the test accuracy first reached the target",
    }
    claims = (
        metric("final_accuracy", ">=", 0.97, text="the MLP reaches >= 97 % test accuracy, read without torchvision"),
        metric("epochs_to_accuracy", "<=", 10, text="97 % test accuracy within 10 epochs"),
    )
    mutants = (
        Mutant("never_steps", "no optimizer.step()", {"train_step": _never_steps}, match="test accuracy"),
        # the same bug under a bar it clears (chance is 10 %): the loss check must see it
        Mutant("never_steps_low_bar", "no optimizer.step(), 1 % bar", _LOW_BAR, match="not below 0.5 x the start"),
        Mutant("drops_last_image", "reader loses the last image", _DROPS_LAST, match="IDX round trip"),
        Mutant("transposed_pixels", "reader transposes each image", _TRANSPOSED, match="round trip: images"),
    )

    def read_split(self, root: Path, split: str) -> Split:
        """One split of the IDX files under ``root``, pixels scaled to [0, 1]."""
        images, labels = idx.load_mnist(root, split)  # uint8 (N, H, W), int64 (N,)
        return images.float() / 255.0, labels

    def train_step(self, model, optimizer, x, y, loss_fn):
        return standard_step(model, optimizer, x, y, loss_fn)

    def train_data(self, ctx, cfg: MnistConfig) -> tuple[Split, Split]:
        """Real MNIST's IDX files for the bench when present, else the digits written as IDX
        (in the check, by check() itself)."""
        source, check = resolve("mnist"), ctx.mode == "check"
        real = not check and source.kind == "files"
        root, self._epochs = (source.path, cfg.real_epochs) if real else (ctx.workdir / "digits-idx", cfg.epochs)
        if not (check or real):
            write_digits_as_mnist(root, ctx.rng_seed)
        train, test = self.read_split(root, "train"), self.read_split(root, "test")
        if not check:
            desc, shape = str(source) if real else f"{source}, via IDX files", tuple(train[0].shape[1:])
            ctx.note(f"data: {desc}; {len(train[1])} train / {len(test[1])} test images of {shape}")
        self._pixels = train[0][0].numel()  # the recipe's input width (called after this)
        return train, test

    def budget(self, cfg: MnistConfig):
        return dataclasses.replace(default_budget(cfg), epochs=self._epochs)  # fewer passes over real MNIST

    def recipe(self, ctx, cfg: MnistConfig) -> Recipe:
        model = MLP(MLPConfig(in_features=self._pixels, hidden=cfg.hidden, out_features=10))
        return Recipe(model, lambda params: torch.optim.Adam(params, lr=cfg.lr), step_fn=self.train_step)

    def check(self, ctx) -> None:
        root = ctx.workdir / "digits-idx"
        written = write_digits_as_mnist(root, ctx.rng_seed)
        heads = [(root / f).read_bytes()[:4] for f in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")]
        ok = heads[0][:2] == b"\x1f\x8b" and heads[1] == b"\x00\x00\x08\x03"  # gzip's magic; IDX images' magic
        why = "the IDX files were not written as MNIST's (gzip train, raw test with magic 0x00000803)"
        ctx.expect(ok, why, name="IDX files written in MNIST format")
        loaded = [self.read_split(root, s) for s in ("train", "test")]
        for split, (xw, yw), (xl, yl) in zip(("train", "test"), written, loaded):
            ctx.assert_close(xl, xw, name="IDX round trip: images", where=split, rtol=0, atol=0)
            ctx.assert_close(yl, yw, name="IDX round trip: labels", where=split)
        super().check(ctx)  # the harness trains the recipe on them: properties() below

    def properties(self, ctx, run) -> None:
        ctx.metric("check_test_accuracy", run.log.final_accuracy)
        target = run.config.target_accuracy
        expect_accuracy(ctx, run, target, name=f"test accuracy >= {target}", why=f" ({run.config.epochs} epochs)")
        expect_learns(ctx, run, ratio=0.5, window=1, name="training loss falls")  # last step <= half the first

    def summarize(self, ctx, run) -> None:
        if (epochs := epochs_to_accuracy(run)) is not None:
            ctx.metric("epochs_to_accuracy", epochs)
