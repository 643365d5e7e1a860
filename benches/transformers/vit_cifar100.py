"""6.10 Vision Transformer for CIFAR-100.

``models.vit.ViT`` (Dosovitskiy et al. 2021: Conv2d patch embedding, class token, learned
positions, pre-LN blocks from ``models.transformer``) learns on real images in the check
(scikit-learn's 8x8 digits upsampled to 16x16); the bench trains ``cifar_small`` on CIFAR-100
python batches under ``$DRILLS_DATA_DIR``, else on the SYNTHETIC stand-in (far easier: only
the pipeline and images/s carry over), and times ViT-B/16 at batch 1.

Lesson: the patch embedding is a linear layer in disguise (patches cut by hand,
``models.vit.patchify``, times the conv's weights), and a ViT's size is almost all blocks: of
ViT-B/16's 86,567,656 parameters, 85,054,464 are the 12 blocks, 769,000 the head, 590,592 the
patch embedding, 151,296 the 197 position embeddings. Counting them on the meta device costs no
memory (float32 would take 346 MB). Dosovitskiy et al. (2021) report that ViTs trail ResNets
trained from scratch on mid-sized data and win with large pre-training.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from harness import TrainingRun, task
from harness.checks import Tolerance
from harness.claims import metric
from harness.data.vit_images import load_images
from harness.mutants import Mutant, tiny_changed
from harness.trained import Budget, Recipe, default_budget, expect_accuracy, forward_prepared
from kernels.vision.vit_wrong import MeanPooledViT, column_major_patches, transposed_patches
from models.vit import ViT, block_flops, class_token_attention, params_by_component, patchify, preset


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


@task("transformers.vit_cifar100", seed="6.10", title="Vision Transformer for CIFAR-100")
class VitCifar100(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": VitConfig(),
        "cpu": VitConfig(model="cifar_small", data="cifar100", n_train=2000, n_test=500, epochs=1, target_accuracy=0.3),
        "gpu": VitConfig(model="cifar", data="cifar100", epochs=30, batch_size=256, lr=1e-3, target_accuracy=0.5),
    }
    metrics = {"final_accuracy": "held-out accuracy at the end of training, share in [0, 1]"}
    claims = (
        metric(
            "final_accuracy", ">=", 0.3, text="cifar_small ViT >= 30 % held-out accuracy after its budget (chance 1 %)"
        ),
    )
    # float32: up to C*P*P = 768 products summed in another order than the conv's: ~1e-6 relative
    tolerances = {torch.float32: Tolerance(rtol=1e-5, atol=1e-5)}
    #: the hand patch extraction and the model under test
    patchify = staticmethod(patchify)
    model_cls = ViT
    mutants = (
        *(
            Mutant(name, what, {"patchify": staticmethod(wrong)}, match="patch embedding")
            for name, what, wrong in (
                ("transposed_patches", "each patch read column by column", transposed_patches),
                ("column_major_patches", "patches listed down the columns first", column_major_patches),
            )
        ),
        # caught by ViT-B/16's parameter count: mean pooling has no class-token parameter
        Mutant("no_class_token", "mean pooling, no class token", {"model_cls": MeanPooledViT}, match="86,567,656"),
        Mutant("does_not_learn", "learning rate 0", tiny_changed(sizes, lr=0.0, epochs=1), match="test accuracy"),
    )

    def check(self, ctx):
        for (C, S, P, E), trial in itertools.product(((3, 32, 4, 24), (1, 16, 4, 16), (3, 224, 16, 8)), range(3)):
            torch.manual_seed(10 + trial)  # the conv's init: weights ~ 1/sqrt(fan-in), so O(1) outputs
            conv = nn.Conv2d(C, E, P, stride=P).to(ctx.device, ctx.dtype)  # and a wrong layout is off by O(1)
            x = torch.randn(2, C, S, S, generator=ctx.generator(10 + trial)).to(ctx.device, ctx.dtype)
            want = conv(x).flatten(2).transpose(1, 2)  # (B, E, S/P, S/P) -> (B, N, E)
            got = F.linear(self.patchify(x, P), conv.weight.reshape(E, -1), conv.bias)
            where = f"C={C}, {S}x{S}, P={P}, E={E}, trial {trial}"
            ctx.assert_close(got, want, name="patch embedding = unfold + linear with the conv's weights", where=where)
        bad = lambda: self.patchify(torch.zeros(1, 3, 30, 32), 4)
        ctx.expect_raises(ValueError, bad, match="patches", name="image not a whole number of patches refused")
        # ViT-B/16 on the meta device: parameters counted without allocating them
        with torch.device("meta"):
            model = self.model_cls(preset("b16"))
            shapes = tuple(model(torch.empty(2, 3, 224, 224)).shape), model.tokens(torch.empty(1, 3, 224, 224)).shape[1]
        n = sum(p.numel() for p in model.parameters())
        rows = [{"component": k, "parameters": v} for k, v in params_by_component(model).items()]
        ctx.table("ViT-B/16 parameters", rows + [{"component": "total", "parameters": n}])
        msg = f"ViT-B/16 has {n:,} parameters, expected 86,567,656 (torchvision's vit_b_16; the paper's Table 1: 86M)"
        ctx.expect(n == 86_567_656, msg, name="ViT-B/16 parameter count = 86,567,656")  # with a 1000-class head
        msg = f"ViT-B/16 meta forward gave (logits shape, tokens) {shapes}; expected ((2, 1000), 197)"
        ctx.expect(shapes == ((2, 1000), 197), msg, name="ViT-B/16 shapes")
        super().check(ctx)  # the harness trains the recipe: properties() below

    def properties(self, ctx, run):
        expect_accuracy(ctx, run, run.config.target_accuracy, name="tiny ViT trains above chance", why=" (chance 0.1)")

    def train_data(self, ctx, config):
        train, self.test, desc = load_images(config, preset(config.model).image_size, ctx.device, ctx.dtype)
        ctx.note(f"data: {desc}; {len(train[1])} train / {len(self.test[1])} test")
        self._n_train = len(train[1])
        return train, self.test

    def budget(self, config) -> Budget:  # two evaluations per epoch (train_data ran first)
        return dataclasses.replace(default_budget(config), eval_every=max(1, self._n_train // config.batch_size // 2))

    def recipe(self, ctx, config) -> Recipe:
        model = self.model_cls(preset(config.model))
        return Recipe(model, lambda params: torch.optim.AdamW(params, lr=config.lr))

    def summarize(self, ctx, run):
        if ctx.mode != "bench":  # inference times and the class token's attention: bench only
            return
        model, xe = run.model.eval(), self.test[0][:256]  # xe: (256, C, S, S)
        where = f"{run.config.model}, eval batch {xe.shape[0]}"
        ctx.measure("classify", forward_prepared(model, xe, "images"), config=where)
        ctx.image("held-out image", xe[0], caption="a held-out test image (normalised)")
        ctx.heatmap(
            "class-token attention (last layer, mean over heads)",
            class_token_attention(model, xe[:1]).flip(0),  # (H/P, W/P)
            x_label="patch column",
            y_label="patch row",
            caption="where the trained class token looks in that image",
        )
        b16 = ViT(preset("b16")).to(ctx.device, ctx.dtype)
        x1 = torch.randn(1, 3, 224, 224, generator=ctx.generator(6)).to(ctx.device, ctx.dtype)
        infer = dataclasses.replace(forward_prepared(b16, x1, "images"), flops=block_flops(b16.config))
        ctx.measure("vit_b16_inference", infer, config="ViT-B/16, batch 1, 224x224")
