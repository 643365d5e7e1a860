"""Plausible wrong versions of the vision research pieces, each beside the right one it mirrors.

research.diffusion (``models.diffusion.LinearSchedule``), research.vit_cifar100
(``models.vit_recipe``), research.style_transfer and research.resnet_repro
(``models.resnet_cifar``, ``kernels.vision.augment``) declare them as mutants: their checks
must reject every one.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from kernels.vision.augment import augment_batch
from models.convnets import BasicBlock
from models.diffusion import LinearSchedule
from models.resnet_cifar import HeCifarRecipe, make_optimizer
from models.vit_recipe import make_scheduler

# -- DDPM (research.diffusion) -----------------------------------------------------------------


class NoSqrtSchedule(LinearSchedule):
    """q(x_t | x_0) that scales x_0 by abar_t, not sqrt(abar_t)."""

    def q_sample(self, x0, t, noise):
        return self._at(self.abar, t, x0) * x0 + self._at((1 - self.abar).sqrt(), t, x0) * noise


class AbarInCt(LinearSchedule):
    """The posterior's x_t coefficient with sqrt(abar_t) where it needs sqrt(alpha_t)."""

    def posterior(self):
        c0, _, var = super().posterior()
        return c0, (1 - self.abar_prev) * self.abar.sqrt() / (1 - self.abar), var


# -- the ViT recipe (research.vit_cifar100) ----------------------------------------------------


def no_warmup(opt, total, warmup, min_lr=0.0):
    """:func:`models.vit_recipe.make_scheduler` without the warmup: cosine from step 0."""
    return make_scheduler(opt, total + 1, 1, min_lr)


def smooth_wrong_only(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Label smoothing that spreads eps over the K - 1 wrong classes only (not PyTorch's definition)."""
    logp = F.log_softmax(logits, -1)  # (N, K)
    k = logits.shape[-1]
    q = torch.full_like(logp, eps / (k - 1)).scatter_(1, y[:, None], 1 - eps)  # eps over the K - 1 others
    return -(q * logp).sum(-1).mean()


def decay_everything(model, wd):
    """AdamW groups with weight decay on every parameter: biases, norms, cls token and positions too."""
    everything = {"params": list(model.parameters()), "names": [n for n, _ in model.named_parameters()]}
    return [{**everything, "weight_decay": wd}, {"params": [], "names": [], "weight_decay": 0.0}]


# -- neural style transfer (research.style_transfer) -------------------------------------------


def gram_unnormalised(f: torch.Tensor) -> torch.Tensor:
    """The Gram matrix F F^T without the 1 / (C H W): (N, C, H, W) -> (N, C, C)."""
    return torch.einsum("nchw,ndhw->ncd", f, f)


def style_on_features(self, fs: list[torch.Tensor], ts: list[torch.Tensor]) -> torch.Tensor:
    """A style loss (a task method) that compares the features themselves, not their Gram matrices."""
    return sum(F.mse_loss(a, b) for a, b in zip(fs, ts))


# -- He et al. 2015 CIFAR ResNet recipe (research.resnet_repro) --------------------------------


class ProjectionBlock(BasicBlock):
    """Option B (1x1 conv + BN on the downsampling shortcut) passed off as option A
    (``models.resnet_cifar.OptionABlock``): 2,752 extra parameters in ResNet-20."""


def one_late_milestones(params, recipe: HeCifarRecipe):
    """``models.resnet_cifar.make_optimizer`` whose scheduler divides the LR one iteration late."""
    opt, _ = make_optimizer(params, recipe)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, [m + 1 for m in recipe.milestones], gamma=recipe.gamma)


def no_weight_decay(params, recipe: HeCifarRecipe):
    """``make_optimizer`` without the recipe's 1e-4 weight decay."""
    return make_optimizer(params, dataclasses.replace(recipe, weight_decay=0.0))


def flip_only(x, y, g, padding=4, flip_p=0.5, fill=0.0):
    """``kernels.vision.augment.augment_batch`` that ignores ``padding``: flips, never crops."""
    return augment_batch(x, y, g, padding=0, flip_p=flip_p)
