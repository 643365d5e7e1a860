"""6.10 Vision Transformer for CIFAR-100.

Compared / checked: ``models.vit.ViT`` (Dosovitskiy et al. 2021: Conv2d patch embedding,
class token, learned positions, pre-LN blocks from ``models.transformer``, head on the class
token).

Check (tiny):

* patch embedding: the Conv2d (kernel = stride = P) equals cutting the image into patches
  by hand (``Tensor.unfold``, features ordered channel, row, column) and multiplying by the
  conv's own weights reshaped to (E, C*P*P), plus its bias, for 3-channel 32x32 images with
  4x4 patches, 1-channel 16x16 with 4x4 and 3-channel 224x224 with 16x16, 3 seeded trials
  each; an image that is not a whole number of patches raises ValueError;
* the ViT-B/16 configuration (224x224, P=16, E=768, 12 blocks of 12 heads, MLP 3072,
  1000 classes) has exactly 86,567,656 parameters, built on the meta device (no memory, no
  init cost); a meta forward gives (B, 1000) logits from 197 tokens; the count per
  component is recorded as a table;
* the tiny preset (16x16 inputs, 4x4 patches, E=64, 2 blocks) trains above chance on real
  images: scikit-learn's 8x8 digits upsampled to 16x16 (1,347 train / 450 test,
  stratified): test accuracy >= 70% (chance 10%).

Bench (cpu): ``cifar_small`` (32x32, P=4, E=128, 4 blocks) trained on CIFAR-100 python
batches when ``$DRILLS_DATA_DIR`` holds ``cifar-100-python``, else on the SYNTHETIC stand-in
``harness.data.synthetic_cifar`` with 100 classes (far easier than CIFAR-100: only the
pipeline and the images/s carry over); training and evaluation images/s, curves; and
ViT-B/16 inference images/s at batch 1 (random weights: speed does not depend on them).

Lesson: the patch embedding is a linear layer in disguise (the conv and unfold+matmul agree to
3.8e-6), and a ViT's size is almost all blocks: of ViT-B/16's 86,567,656 parameters, 85,054,464
are the 12 blocks (7,087,872 each), 769,000 the head, 590,592 the patch embedding, 151,296 the
197 position embeddings. Counting them on the meta device costs no memory; allocating them in
float32 would take 346 MB. ViT-B/16 inference at batch 1 ran at 1.1 images/s (904 ms, ~35 GFLOP,
21% of the measured matmul peak). The cifar_small model trained at 113 images/s and reached
65.8% on the 100-class synthetic stand-in after one epoch of 2,000 images (far easier than
CIFAR-100; chance 1%); the tiny model reaches 82% on upsampled digits in the check (4 epochs). Measured
with ``OMP_NUM_THREADS=1 drills bench --task transformers.vit_cifar100`` (cpu preset, float32)
on the shared 2-core AMD EPYC VM, torch 2.13 CPU, load average ~8 from other jobs: wall-clock
figures are inflated and noisy (the run record flags IQR/median > 10%), ratios and counts are
the robust part.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import load_cifar100, load_digits_images, resolve, stratified_split, synthetic_cifar
from harness.train import fit, standard_step
from models.vit import ViT, patchify, preset

#: ViT-B/16 with a 1000-class head, as torchvision's vit_b_16 and the paper's Table 1
VIT_B16_PARAMS = 86_567_656


@dataclasses.dataclass(frozen=True)
class VitConfig:
    """Model, data and training budget."""

    model: str = "tiny"
    """models.vit preset"""
    data: str = "digits"
    """"digits" (real, embedded, upsampled) or "cifar100" (real files, else synthetic stand-in)"""
    n_train: int | None = None
    """training images (None: all of the split)"""
    n_test: int | None = None
    """test images (None: all of the split)"""
    epochs: int = 4
    """passes over the training images"""
    batch_size: int = 64
    """images per optimizer step"""
    lr: float = 2e-3
    """AdamW learning rate"""
    target_accuracy: float = 0.7
    """test accuracy the check requires on digits (chance 0.1)"""

    def label(self) -> str:
        return f"{self.model},{self.data},n={self.n_train},epochs={self.epochs},bs={self.batch_size}"


def load_images(config: VitConfig, image_size: int, device, dtype):
    """((x, y) train, (x, y) test, description); images normalised by the training set's statistics."""
    if config.data == "digits":
        d = load_digits_images()
        x = F.interpolate(
            d.images.to(torch.float32)[:, None] / 16, size=image_size, mode="bilinear", align_corners=False
        )  # (1797, 1, S, S)
        tr, te = stratified_split(d.labels, 0.25, seed=0)
        (xtr, ytr), (xte, yte) = (x[tr], d.labels[tr]), (x[te], d.labels[te])
        desc = f"{d.description}, bilinearly upsampled to {image_size}x{image_size}"
    else:
        src = resolve("cifar100")
        if src.kind == "files":
            a, b = load_cifar100(src.path, "train"), load_cifar100(src.path, "test")
            desc = a.description
        else:
            a, b = (
                synthetic_cifar(config.n_train or 50_000, 100, seed=0),
                synthetic_cifar(config.n_test or 10_000, 100, seed=1),
            )
            desc = f"SYNTHETIC stand-in for CIFAR-100 (no cifar-100-python found): {a.description}"
        a = a.take(torch.arange(min(config.n_train or len(a), len(a))))
        b = b.take(torch.arange(min(config.n_test or len(b), len(b))))
        (xtr, ytr), (xte, yte) = (a.images.float() / 255, a.labels), (b.images.float() / 255, b.labels)
    mean, std = xtr.mean(dim=(0, 2, 3), keepdim=True), xtr.std(dim=(0, 2, 3), keepdim=True)
    norm = lambda t: ((t - mean) / std).to(device, dtype)  # noqa: E731
    return (norm(xtr), ytr.to(device)), (norm(xte), yte.to(device)), desc


@task("transformers.vit_cifar100", seed="6.10", title="Vision Transformer for CIFAR-100")
class VitCifar100(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": VitConfig(),
        "cpu": VitConfig(model="cifar_small", data="cifar100", n_train=2000, n_test=500, epochs=1, target_accuracy=0.3),
        "gpu": VitConfig(model="cifar", data="cifar100", epochs=30, batch_size=256, lr=1e-3, target_accuracy=0.5),
    }
    #: the hand patch extraction and the model under test (tests plant broken ones)
    patchify = staticmethod(patchify)
    model_cls = ViT

    def check(self, ctx):
        self._check_patch_embedding(ctx)
        self._check_b16_count(ctx)
        config = ctx.configs[0]
        log = self._train(ctx, config)
        ctx.expect(
            log.final_accuracy >= config.target_accuracy,
            f"test accuracy {log.final_accuracy:.3f} < {config.target_accuracy} (chance 0.1) on digits",
            name="tiny ViT trains above chance",
        )

    def _check_patch_embedding(self, ctx):
        for C, S, P, E in ((3, 32, 4, 24), (1, 16, 4, 16), (3, 224, 16, 8)):
            for trial in range(3):
                g = ctx.generator(10 + trial)
                conv = torch.nn.Conv2d(C, E, P, stride=P).to(ctx.device, ctx.dtype)
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / (C * P * P) ** 0.5)  # O(1) outputs
                    conv.bias.copy_(torch.randn(E, generator=g))
                x = torch.randn(2, C, S, S, generator=g).to(ctx.device, ctx.dtype)
                with torch.no_grad():
                    want = conv(x).flatten(2).transpose(1, 2)  # (B, E, S/P, S/P) -> (B, N, E)
                    got = F.linear(self.patchify(x, P), conv.weight.reshape(E, -1), conv.bias)
                # float32: up to C*P*P = 768 products summed in another order than the conv kernel's, so
                # rounding reaches a few 1e-6 relative; a wrong patch layout is off by O(1)
                tol = {"rtol": 1e-5, "atol": 1e-5} if ctx.dtype == torch.float32 else {}
                ctx.assert_close(
                    got,
                    want,
                    name="patch embedding = unfold + linear with the conv's weights",
                    where=f"C={C}, {S}x{S}, P={P}, E={E}, trial {trial}",
                    **tol,
                )
        ctx.expect_raises(
            ValueError,
            lambda: self.patchify(torch.zeros(1, 3, 30, 32), 4),
            match="patches",
            name="image not a whole number of patches refused",
        )

    def _check_b16_count(self, ctx):
        config = preset("b16")
        with torch.device("meta"):
            model = self.model_cls(config)
            logits = model(torch.empty(2, 3, 224, 224))
            tokens = model.tokens(torch.empty(1, 3, 224, 224)).shape[1]
        n = sum(p.numel() for p in model.parameters())
        ctx.note(f"ViT-B/16 parameters counted on the meta device: {n:,}")
        groups: dict[str, int] = {}
        for name, p in model.named_parameters():  # patch_embed, cls_token, pos_embed, blocks, norm, head
            groups[name.split(".")[0]] = groups.get(name.split(".")[0], 0) + p.numel()
        rows = [{"component": k, "parameters": v} for k, v in groups.items()]
        ctx.table("ViT-B/16 parameters", rows + [{"component": "total", "parameters": n}])
        ctx.expect(
            n == VIT_B16_PARAMS,
            f"ViT-B/16 has {n:,} parameters, expected {VIT_B16_PARAMS:,}",
            name="ViT-B/16 parameter count = 86,567,656",
        )
        ctx.expect(
            tuple(logits.shape) == (2, 1000) and tokens == 197,
            f"ViT-B/16 meta forward gave logits {tuple(logits.shape)} from {tokens} tokens; expected (2, 1000), 197",
            name="ViT-B/16 shapes",
        )

    def _model(self, ctx, config):
        torch.manual_seed(ctx.rng_seed)
        return self.model_cls(preset(config.model)).to(ctx.device, ctx.dtype)

    def _train(self, ctx, config):
        model = self._model(ctx, config)
        train, test, desc = load_images(config, model.config.image_size, ctx.device, ctx.dtype)
        ctx.note(f"data: {desc}; {len(train[1])} train / {len(test[1])} test")
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        log = fit(
            model,
            opt,
            train,
            batch_size=config.batch_size,
            epochs=config.epochs,
            eval_data=test,
            eval_every=max(1, len(train[1]) // config.batch_size // 2),
            target_accuracy=config.target_accuracy,
            seed=ctx.rng_seed,
        )
        log.record(ctx)
        self._trained = (model, test)
        return log

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config)
        c = model.config
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        g = ctx.generator(5)
        x = torch.randn(config.batch_size, c.in_channels, c.image_size, c.image_size, generator=g).to(
            ctx.device, ctx.dtype
        )
        y = torch.randint(0, c.num_classes, (config.batch_size,), generator=g).to(ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, x, y), items=config.batch_size, item_unit="images")

    def bench(self, ctx):
        config = ctx.configs[0]
        self._train(ctx, config)
        model, test = self._trained
        ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        model.eval()
        xe = test[0][:256]
        ctx.measure(
            "classify",
            Prepared(fn=torch.no_grad()(lambda: model(xe)), items=xe.shape[0], item_unit="images"),
            config=f"{config.model}, eval batch {xe.shape[0]}",
        )
        torch.manual_seed(ctx.rng_seed)
        b16 = ViT(preset("b16")).to(ctx.device, ctx.dtype).eval()
        x1 = torch.randn(1, 3, 224, 224, generator=ctx.generator(6)).to(ctx.device, ctx.dtype)
        ctx.measure(
            "vit_b16_inference",
            Prepared(
                fn=torch.no_grad()(lambda: b16(x1)),
                items=1,
                item_unit="images",
                flops=2 * 197 * (12 * (4 * 768 * 768 + 2 * 768 * 3072) + 2 * 197 * 768 * 12),
            ),
            config="ViT-B/16, batch 1, 224x224",
        )
