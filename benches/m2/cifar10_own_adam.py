"""m2 A CNN on CIFAR-10 trained with the hand-written Adam.

The CNN is ``models.convnets.SmallCNN`` (conv-BN-ReLU-maxpool stages and a linear head);
the optimizer ``kernels.optim.optimizers.Adam`` in its loop and foreach versions against
``torch.optim.Adam`` (foreach, torch's default on CPU). Same seed, initial weights,
batches and step budget for all three:

* ``torch_adam`` (baseline), ``own_adam`` (per-tensor loop), ``own_adam_foreach``.

Data: CIFAR-10 python batches when found (``--data-dir`` / ``DRILLS_DATA_DIR`` holding
``cifar-10-batches-py``, read with ``harness.data.load_cifar10``); otherwise the
SYNTHETIC stand-in ``harness.data.synthetic_cifar`` (3x32x32 images whose class sets two
colours and a stripe orientation/frequency, with noise), labelled as such in the run
record's notes. Its accuracy says nothing about CIFAR-10; the loss-curve equality and
the images/s carry over, since they depend on shapes and arithmetic, not on pixels.

Check: this task's loading path parses real-format python batches: a tiny
``cifar-10-batches-py`` tree (five ``data_batch_*``, ``test_batch``, ``batches.meta``) is
written with ``harness.data.write_cifar10`` into the work folder and read back through
the task's loader, which must return exactly the pixels, labels and class names written
and say it used real batches. Then 30 Adam steps of the CNN on the default data (the
stand-in unless ``DRILLS_DATA_DIR`` holds CIFAR-10, which must then say SYNTHETIC) with each
optimizer: the per-step loss curves of the two own versions equal torch's (float32 table;
they come out bit-identical) and so do the final parameters; the loss falls.

Bench: the loss curves of the three variants over the budget (one chart, one line each,
with the largest difference from torch's curve as a metric), the final test accuracy, and
the training images/s of one step per variant.

Lesson (cifar_small preset: 33,946 parameters in 11 tensors, batch 64, 60 steps on the
synthetic stand-in, float32, ``drills bench --task m2.cifar10_own_adam`` twice, on a 2-core
VM shared with other jobs, OMP_NUM_THREADS=1): the three loss curves are identical, bit for
bit (largest difference 0.0 at every step, in the check as in the bench): the hand
Adam performs torch's operations in torch's order, and on the CPU the loop and foreach
versions round identically. One training step took 77-83 ms with torch's Adam, 88-100 ms
with the own loop and 67-90 ms with the own foreach version (770-830, 640-730 and 710-950
images/s): the same within the noise of this machine, as expected, since the optimizer
touches 34k parameters while the convolutions' forward and backward on 64 images are
nearly all of the step. All three reach 100% test accuracy on the stand-in, which is far
easier than CIFAR-10; point ``--data-dir`` at the real batches for a meaningful accuracy.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

import kernels.optim.optimizers as own_optim
from harness import Comparison, Prepared, task
from harness.data import load_cifar10, resolve, synthetic_cifar, write_cifar10
from harness.train import evaluate
from models.convnets import SmallCNN, small_cnn_preset


@dataclasses.dataclass(frozen=True)
class AdamCnnConfig:
    """Data size, model preset and training budget."""

    model: str = "cifar_tiny"
    """SmallCNN preset (models/convnets.py)"""
    n_train: int = 512
    """training images (synthetic count, or a cap on the real 50,000)"""
    n_test: int = 256
    """test images (synthetic count, or a cap on the real 10,000)"""
    steps: int = 30
    """optimizer steps of every run"""
    batch: int = 32
    """images per step"""
    lr: float = 2e-3
    """Adam learning rate (betas 0.9, 0.999, eps 1e-8)"""

    def label(self) -> str:
        return f"{self.model},steps={self.steps},B={self.batch}"


def load_images(config: AdamCnnConfig, data_dir=None):
    """(train ImageSet, test ImageSet, description): real CIFAR-10 python batches when found
    in ``data_dir`` (else ``$DRILLS_DATA_DIR``), else the synthetic stand-in. Images uint8."""
    src = resolve("cifar10", data_dir)
    if src.kind == "files":
        tr, te = load_cifar10(src.path, "train"), load_cifar10(src.path, "test")
        tr = tr.take(torch.arange(min(config.n_train, len(tr))))
        te = te.take(torch.arange(min(config.n_test, len(te))))
        return tr, te, tr.description
    tr, te = synthetic_cifar(config.n_train, seed=0), synthetic_cifar(config.n_test, seed=1)
    return tr, te, f"SYNTHETIC stand-in for CIFAR-10 (no python batches found): {tr.description}"


def to_tensors(train, test, device, dtype):
    """Scale to [0, 1], normalise each channel by the training images' mean and std."""
    x = train.images.to(dtype) / 255  # (N, 3, 32, 32)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)

    def norm(s):
        return ((s.images.to(dtype) / 255 - mean) / std).to(device), s.labels.to(device)

    return norm(train), norm(test)


@task("m2.cifar10_own_adam", seed="m2", title="CNN on CIFAR-10 with own Adam")
class Cifar10OwnAdam(Comparison):
    __doc__ = __doc__
    variants = ("torch_adam", "own_adam", "own_adam_foreach")
    sizes = {
        "tiny": AdamCnnConfig(),
        "cpu": AdamCnnConfig(model="cifar_small", n_train=2048, n_test=512, steps=60, batch=64),
        "gpu": AdamCnnConfig(model="cifar", n_train=50_000, n_test=10_000, steps=3000, batch=128),
    }
    #: the loading path under test (tests swap in broken ones)
    loader = staticmethod(load_images)
    #: the hand-written Adam under test
    adam_cls = own_optim.Adam

    def optimizer(self, variant: str, params, lr: float) -> torch.optim.Optimizer:
        if variant == "torch_adam":
            return torch.optim.Adam(params, lr=lr, foreach=True)
        return self.adam_cls(params, lr=lr, foreach=variant == "own_adam_foreach")

    def model(self, config: AdamCnnConfig, device, dtype, seed: int) -> SmallCNN:
        torch.manual_seed(seed)
        return SmallCNN(small_cnn_preset(config.model)).to(device, dtype)

    def train(self, variant: str, config: AdamCnnConfig, data, device, dtype, seed: int):
        """(per-step losses, model) after ``config.steps`` steps on a seeded batch stream."""
        (xtr, ytr), _ = data
        model = self.model(config, device, dtype, seed)
        opt = self.optimizer(variant, model.parameters(), config.lr)
        g = torch.Generator().manual_seed(seed)
        losses = []
        for _ in range(config.steps):
            idx = torch.randint(0, len(ytr), (config.batch,), generator=g).to(device)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return torch.stack(losses).float().cpu(), model

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_reader(ctx, cfg)
        tr, te, desc = self.loader(cfg)  # real batches if DRILLS_DATA_DIR has them, else the stand-in
        ctx.expect(
            not tr.synthetic or "SYNTHETIC" in desc,
            f"the stand-in must say it is synthetic: {desc}",
            name="stand-in labelled synthetic",
        )
        ctx.note(f"data: {desc}")
        data = to_tensors(tr, te, ctx.device, ctx.dtype)
        ref_losses, ref_model = self.train("torch_adam", cfg, data, ctx.device, ctx.dtype, ctx.rng_seed)
        for v in self.variants[1:]:
            losses, model = self.train(v, cfg, data, ctx.device, ctx.dtype, ctx.rng_seed)
            ctx.assert_close(losses, ref_losses, name=f"{v}: loss curve = torch Adam's", where=f"{cfg.steps} steps")
            ctx.assert_close(
                list(model.parameters()), list(ref_model.parameters()), name=f"{v}: final parameters = torch Adam's"
            )
        first, last = ref_losses[:5].mean().item(), ref_losses[-5:].mean().item()
        ctx.expect(
            last < 0.8 * first,
            f"loss {first:.3f} -> {last:.3f} in {cfg.steps} steps: not learning",
            name="the CNN learns",
        )

    def check_reader(self, ctx, cfg: AdamCnnConfig) -> None:
        g = ctx.generator(1)
        train = (torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(10) % 10)
        test = (torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8), torch.tensor([3, 1, 4, 1]))
        classes = tuple(f"written_{i}" for i in range(10))
        folder = write_cifar10(ctx.workdir / "cifar10", train, test, classes)
        tr, te, desc = self.loader(cfg, ctx.workdir)
        ctx.expect(
            "real python batches" in desc and not tr.synthetic,
            f"the batches written in {folder} were not used: {desc}",
            name="CIFAR batches found and used",
        )
        for got, want, split in ((tr, train, "train"), (te, test, "test")):
            ctx.expect(
                got.images.shape == want[0].shape and torch.equal(got.images, want[0]),
                f"CIFAR {split} pixels differ from those written",
                name=f"CIFAR {split} pixels read back",
            )
            ctx.expect(
                torch.equal(got.labels, want[1]),
                f"CIFAR {split} labels differ: {got.labels.tolist()}",
                name=f"CIFAR {split} labels read back",
            )
        ctx.expect(
            tr.classes == classes, f"class names {tr.classes} != {classes}", name="class names from batches.meta"
        )

    # -- bench ---------------------------------------------------------------------------------
    def _data(self, ctx, config):
        """Normalised (train, test) tensors, loaded once per config and device."""
        key = (config, ctx.device, ctx.dtype)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            tr, te, desc = self.loader(config)
            if f"data: {desc}" not in ctx.record.notes:
                ctx.note(f"data: {desc}")
            cache.clear()  # one data set in memory at a time
            cache[key] = to_tensors(tr, te, ctx.device, ctx.dtype)
        return cache[key]

    def prepare(self, ctx, impl: str, config: AdamCnnConfig) -> Prepared:
        (xtr, ytr), _ = self._data(ctx, config)
        xb, yb = xtr[: config.batch], ytr[: config.batch]
        model = self.model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = self.optimizer(impl, model.parameters(), config.lr)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

        step()
        return Prepared(fn=step, items=config.batch, item_unit="images")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self._data(ctx, cfg)
        curves = {}
        for v in self.variants:
            curves[v], model = self.train(v, cfg, data, ctx.device, ctx.dtype, ctx.rng_seed)
            ctx.curve(
                "train loss", list(range(1, cfg.steps + 1)), curves[v].tolist(), y_label="cross-entropy", series=v
            )
            ctx.metric(f"{v}.test_accuracy", evaluate(model, *data[1])[0])
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
        for v in self.variants[1:]:
            ctx.metric(f"{v}.max_abs_loss_diff_vs_torch", (curves[v] - curves["torch_adam"]).abs().max().item())
