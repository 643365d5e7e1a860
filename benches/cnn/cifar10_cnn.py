"""4.01 CNN for CIFAR-10.

Trains a small CNN (``models/convnets.py``: three conv-BN-ReLU-maxpool stages) on CIFAR-10
when the python batches are found (``--data-dir`` / ``DRILLS_DATA_DIR`` holding
``cifar-10-batches-py``, read by ``harness.data.load_cifar10``). Without them it trains
on a SYNTHETIC stand-in, ``harness.data.synthetic_cifar``: 3x32x32 images whose class
sets two colours and a stripe orientation/frequency, with per-image phase, jitter and
noise. The stand-in is far easier than CIFAR-10 (near 100% is reachable), so accuracy
figures from it say only that the pipeline learns; throughput figures carry over, as
they depend on shapes, not pixels. The run record's notes say which data was used.

Checked: this task's CIFAR loading path parses real-format python batches (the check
writes a tiny ``cifar-10-batches-py`` tree, five pickled ``data_batch_*`` files,
``test_batch`` and ``batches.meta``, with ``harness.data.write_cifar10`` into its work
folder, reads it back through the task's loader and compares pixels, labels and class
names exactly; a truncated batch is refused with an error naming the file); the CNN
trains on the stand-in to well above chance (>= 50% for 10 classes) in the tiny budget.
Curves (loss, accuracy, lr, throughput) go into the run record.

Bench: training and evaluation images/s; time to the target accuracy (on a GPU with the
full real data set: 75%).

Lesson: the per-channel normalisation and BN let a 3-stage CNN learn within one epoch;
on a CPU, training costs about 3x the forward pass per image (backward is ~2x forward),
and small batches leave the two cores under-used.

Timing note: this machine was shared with other jobs (load average 6-8 on 2 cores). With
2 threads every figure was distorted by OpenMP threads waiting for a descheduled peer
(F.conv2d itself ran 2x slower than with one thread), so the figures below come from
``OMP_NUM_THREADS=1 drills bench --task cnn.cifar10_cnn --no-save`` (one thread, torch 2.13 CPU,
float32, AMD EPYC); single runs, +-20% between runs.

Synthetic stand-in, ``cifar_small`` (16/32/64 channels, BN), batch 64: a training step
46 ms = 1,384 images/s (1,436 images/s over the 2-epoch run); evaluation 2,949 images/s
(batch 256); 90% test accuracy after 12 steps (0.55 s), 100% after 2 epochs of 1,536
images (the stand-in is easy). Tiny check: 100% after 2 epochs of 800 images. Bench 7 s.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness.data import DataFormatError, load_cifar10, resolve, synthetic_cifar, write_cifar10
from harness.train import fit, standard_step
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


def load_images(config: CifarConfig, data_dir=None):
    """(train ImageSet, test ImageSet, description): real CIFAR-10 python batches when found
    in ``data_dir`` (else ``$DRILLS_DATA_DIR``), else the synthetic stand-in. Images uint8."""
    src = resolve("cifar10", data_dir)
    if src.kind == "files":
        tr, te = load_cifar10(src.path, "train"), load_cifar10(src.path, "test")
        if config.n_train is not None:
            tr = tr.take(torch.arange(min(config.n_train, len(tr))))
        if config.n_test is not None:
            te = te.take(torch.arange(min(config.n_test, len(te))))
        return tr, te, tr.description
    tr, te = synthetic_cifar(config.n_train or 50_000, seed=0), synthetic_cifar(config.n_test or 10_000, seed=1)
    return tr, te, f"SYNTHETIC stand-in for CIFAR-10 (no python batches found): {tr.description}"


def to_tensors(train, test, device, dtype):
    """Scale to [0, 1] and normalise each channel by the training set's mean and std."""
    x = train.images.to(dtype) / 255  # (N, 3, 32, 32)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)

    def norm(s):
        return ((s.images.to(dtype) / 255 - mean) / std).to(device), s.labels.to(device)

    return norm(train), norm(test)


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
    #: the loading path under test (tests swap in broken ones)
    loader = staticmethod(load_images)

    def check(self, ctx):
        config = ctx.configs[0]
        g = ctx.generator(1)
        train = (torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(10) % 10)
        test = (torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8), torch.tensor([3, 1, 4, 1]))
        classes = tuple(f"written_{i}" for i in range(10))
        folder = write_cifar10(ctx.workdir / "cifar10", train, test, classes)
        tr, te, desc = self.loader(config, ctx.workdir)
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
            lambda: self.loader(config, ctx.workdir),
            match="data_batch_3",
            name="truncated batch refused, naming the file",
        )

        log, desc = self._train(ctx, config)
        ctx.expect(
            log.final_accuracy >= config.target_accuracy,
            f"test accuracy {log.final_accuracy:.3f} < {config.target_accuracy} (chance 0.1) after "
            f"{log.steps[-1]} steps on {desc}",
            name="trains above chance",
        )

    def _data(self, ctx, config):
        tr, te, desc = self.loader(config)
        ctx.note(f"data: {desc}")
        return (*to_tensors(tr, te, ctx.device, ctx.dtype), desc)

    def _model(self, ctx, config):
        torch.manual_seed(ctx.rng_seed)
        return SmallCNN(small_cnn_preset(config.model)).to(ctx.device, ctx.dtype)

    def _train(self, ctx, config):
        train, test, desc = self._data(ctx, config)
        model = self._model(ctx, config)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        log = fit(
            model,
            opt,
            train,
            batch_size=config.batch_size,
            epochs=config.epochs,
            eval_data=test,
            eval_every=max(1, len(train[1]) // config.batch_size // 4),
            target_accuracy=config.target_accuracy,
            seed=ctx.rng_seed,
        )
        log.record(ctx)
        self._trained = (model, test)
        return log, desc

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        g = ctx.generator(2)
        x = torch.randn(config.batch_size, 3, 32, 32, generator=g).to(ctx.device, ctx.dtype)
        y = torch.randint(0, 10, (config.batch_size,), generator=g).to(ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, x, y), items=config.batch_size, item_unit="images")

    def bench(self, ctx):
        config = ctx.configs[0]
        self._train(ctx, config)
        model, test = self._trained
        ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        xe = test[0][: config.eval_batch]
        model.eval()
        ctx.measure(
            "eval",
            Prepared(fn=torch.no_grad()(lambda: model(xe)), items=xe.shape[0], item_unit="images"),
            config=f"eval batch {xe.shape[0]}",
        )
