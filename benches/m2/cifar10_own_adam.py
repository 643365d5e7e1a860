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

Check: a tiny ``cifar-10-batches-py`` tree (``harness.data.write_cifar10``) written into
the work folder is read back through the task's loader, which must return exactly the
pixels, labels and class names written and say it used real batches. Then 30 Adam steps
of the CNN on the default data (the stand-in says SYNTHETIC) with each optimizer: the
per-step loss curves of the own versions and their final parameters equal torch's (float32
table; they come out bit-identical); the loss falls.

Bench: the loss curves of the three variants over the budget (one chart, one line each,
with the largest difference from torch's curve as a metric), the final test accuracy, and
the training images/s of one step per variant.

Lesson: the hand Adam performs torch's operations in torch's order, so its loss curves
equal torch's bit for bit (loop and foreach round identically on the CPU). Its speed does
not matter here: the optimizer touches tens of thousands of parameters while the
convolutions' forward and backward over a batch of images are nearly all of a step, so the
three variants' images/s agree within noise (the claims say by how much). The stand-in is
far easier than CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny
Images"); point ``--data-dir`` at the real batches for a meaningful accuracy.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

import kernels.optim.optimizers as own_optim
from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data import write_cifar10
from harness.data.cifar_images import load_images, to_tensors
from harness.mutants import Mutant
from harness.train import evaluate
from models.convnets import SmallCNN, small_cnn_preset

_SAME = "own foreach Adam's loss curve equals torch Adam's (|diff| <= 1e-6: same ops, same order)"
_STEP = "a CNN training step with own {} Adam within 1.1x of torch's Adam (convolutions dominate)"


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


def _load(config: AdamCnnConfig, data_dir=None):
    """(train, test, description) of CIFAR-10 capped at the config's sizes, else the stand-in."""
    return load_images(config.n_train, config.n_test, data_dir)


# -- wrong optimizer and loaders (the mutants) ---------------------------------------------------
class AdamNoBiasCorrection(own_optim.Adam):
    """WRONG: Adam without the 1 / (1 - beta^t) corrections (early steps far too small)."""

    def _update(self, group, params):
        beta1, beta2 = group["betas"]
        for p in params:
            st = self.state[p]
            if not st:
                st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            st["step"] += 1
            st["exp_avg"].lerp_(p.grad, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(group["eps"]), value=-group["lr"])


def _loader_swapping_channels(config, data_dir=None):
    """WRONG: reads RGB as BGR."""
    tr, te, desc = _load(config, data_dir)
    return dataclasses.replace(tr, images=tr.images.flip(1)), te, desc


def _loader_dropping_last_batch(config, data_dir=None):
    """WRONG: forgets data_batch_5 of the real files."""
    tr, te, desc = _load(config, data_dir)
    return (tr.take(torch.arange(len(tr) - 2)) if data_dir is not None else tr), te, desc


@task("m2.cifar10_own_adam", seed="m2", title="CNN on CIFAR-10 with own Adam")
class Cifar10OwnAdam(Comparison):
    __doc__ = __doc__
    variants = ("torch_adam", "own_adam", "own_adam_foreach")
    sizes = {
        "tiny": AdamCnnConfig(),
        "cpu": AdamCnnConfig(model="cifar_small", n_train=2048, n_test=512, steps=60, batch=64),
        "gpu": AdamCnnConfig(model="cifar", n_train=50_000, n_test=10_000, steps=3000, batch=128),
    }
    metrics = {"own_adam_foreach.max_abs_loss_diff_vs_torch": "largest |own foreach - torch| loss over the curve"}
    claims = (
        metric("own_adam_foreach.max_abs_loss_diff_vs_torch", "<=", 1e-6, text=_SAME),
        time_ratio("own_adam_foreach", to="torch_adam", at_most=1.1, text=_STEP.format("foreach")),
        time_ratio("own_adam", to="torch_adam", at_most=1.1, text=_STEP.format("per-tensor")),
    )
    #: the loading path under test (the mutants swap in wrong ones)
    loader = staticmethod(_load)
    #: the hand-written Adam under test
    adam_cls = own_optim.Adam
    mutants = (
        Mutant(
            "adam_no_bias_correction",
            "Adam without bias correction",
            {"adam_cls": AdamNoBiasCorrection},
            match="loss curve = torch Adam's",
        ),
        Mutant(
            "loader_swaps_channels",
            "RGB read as BGR",
            {"loader": staticmethod(_loader_swapping_channels)},
            match="pixels",
        ),
        Mutant(
            "loader_drops_a_batch",
            "data_batch_5 forgotten",
            {"loader": staticmethod(_loader_dropping_last_batch)},
            match="train pixels",
        ),
    )

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
        msg = f"the stand-in must say it is synthetic: {desc}"
        ctx.expect(not tr.synthetic or "SYNTHETIC" in desc, msg, name="stand-in labelled synthetic")
        ctx.note(f"data: {desc}")
        data = to_tensors(tr, te, ctx.device, ctx.dtype)
        ref_losses, ref_model = self.train("torch_adam", cfg, data, ctx.device, ctx.dtype, ctx.rng_seed)
        for v in self.variants[1:]:
            losses, model = self.train(v, cfg, data, ctx.device, ctx.dtype, ctx.rng_seed)
            ctx.assert_close(losses, ref_losses, name=f"{v}: loss curve = torch Adam's", where=f"{cfg.steps} steps")
            params, ref = list(model.parameters()), list(ref_model.parameters())
            ctx.assert_close(params, ref, name=f"{v}: final parameters = torch Adam's")
        first, last = ref_losses[:5].mean().item(), ref_losses[-5:].mean().item()
        msg = f"loss {first:.3f} -> {last:.3f} in {cfg.steps} steps: not learning"
        ctx.expect(last < 0.8 * first, msg, name="the CNN learns")

    def check_reader(self, ctx, cfg: AdamCnnConfig) -> None:
        g = ctx.generator(1)
        train = (torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(10) % 10)
        test = (torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8), torch.tensor([3, 1, 4, 1]))
        classes = tuple(f"written_{i}" for i in range(10))
        folder = write_cifar10(ctx.workdir / "cifar10", train, test, classes)
        tr, te, desc = self.loader(cfg, ctx.workdir)
        msg = f"the batches written in {folder} were not used: {desc}"
        ctx.expect("real python batches" in desc and not tr.synthetic, msg, name="CIFAR batches found and used")
        for got, want, split in ((tr, train, "train"), (te, test, "test")):
            same = got.images.shape == want[0].shape and torch.equal(got.images, want[0])
            ctx.expect(same, f"CIFAR {split} pixels differ from those written", name=f"CIFAR {split} pixels read back")
            msg = f"CIFAR {split} labels differ: {got.labels.tolist()}"
            ctx.expect(torch.equal(got.labels, want[1]), msg, name=f"CIFAR {split} labels read back")
        msg = f"class names {tr.classes} != {classes}"
        ctx.expect(tr.classes == classes, msg, name="class names from batches.meta")

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
            steps = list(range(1, cfg.steps + 1))
            ctx.curve("train loss", steps, curves[v].tolist(), y_label="cross-entropy", series=v)
            ctx.metric(f"{v}.test_accuracy", evaluate(model, *data[1])[0])
            ctx.measure(v, self.prepare(ctx, v, cfg), config=cfg)
        for v in self.variants[1:]:
            ctx.metric(f"{v}.max_abs_loss_diff_vs_torch", (curves[v] - curves["torch_adam"]).abs().max().item())
