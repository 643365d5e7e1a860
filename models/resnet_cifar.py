"""He et al. (2015) CIFAR ResNets with option-A shortcuts, and the paper's CIFAR-10 recipe.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016, arXiv:1512.03385),
Sec. 4.2: a 3x3 stem of 16 channels, three stages of n basic blocks with 16, 32 and 64 channels
(6n + 2 weighted layers), global average pooling and a 10-way fc. Where a stage halves the size
and doubles the width the shortcut is *option A*: the identity on every second pixel, padded with
zero channels, so it adds no parameters (ResNet-20: 269,722 parameters). Option B (a 1x1 conv +
BN projection, :class:`models.convnets.BasicBlock`) adds 2 x (16*32 + 2*32) + ... parameters.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from models.convnets import ResNetConfig

#: parameters of the option-A CIFAR ResNet-20 (He et al. Table 6: "0.27M")
RESNET20_PARAMS = 269_722


class OptionABlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) with a parameter-free shortcut.

    (N, cin, H, W) -> (N, width, ceil(H/stride), ceil(W/stride)). The shortcut takes every
    ``stride``-th pixel and pads the channels with zeros (cin -> width, split evenly on both
    sides), He et al. 2015 option A. Same constructor as ``models.convnets.BasicBlock``.
    """

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__()
        if width < cin:
            raise ValueError(f"OptionABlock: width {width} < input channels {cin}; option A only pads channels")
        self.residual, self.stride, self.pad = residual, stride, width - cin
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (N, cin, H/s, W/s)
        lo = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.pad - lo))  # (N, width, H/s, W/s): zero channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x)) if self.residual else self.relu(out)


def cifar_resnet_config(n: int, num_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)) -> ResNetConfig:
    """ResNet-(6n+2) of He et al. Sec. 4.2 (n = 3: ResNet-20, n = 18: ResNet-110); build it with
    ``models.convnets.ResNet(config, block=OptionABlock)``."""
    if n < 1:
        raise ValueError(f"cifar_resnet_config: n must be >= 1 blocks per stage, got {n}")
    return ResNetConfig(layers=(n,) * len(widths), widths=widths, num_classes=num_classes)


@dataclasses.dataclass(frozen=True)
class HeCifarRecipe:
    """He et al. 2015 Sec. 4.2 CIFAR-10 training recipe (the paper's numbers are the defaults)."""

    lr: float = 0.1
    """initial learning rate of SGD"""
    momentum: float = 0.9
    """SGD momentum"""
    weight_decay: float = 1e-4
    """L2 weight decay (applied to every parameter, as in the paper's Caffe setup)"""
    milestones: tuple[int, ...] = (32_000, 48_000)
    """iterations at which the LR is divided by 10"""
    gamma: float = 0.1
    """LR factor at each milestone"""
    total_steps: int = 64_000
    """iterations (mini-batches) in all"""
    batch_size: int = 128
    """images per mini-batch"""
    padding: int = 4
    """pixels of zero padding on each side before the random 32x32 crop"""
    flip_p: float = 0.5
    """probability of a horizontal flip"""

    def scaled(self, total_steps: int, batch_size: int | None = None) -> HeCifarRecipe:
        """The same schedule shape compressed to ``total_steps`` (milestones at 1/2 and 3/4)."""
        ms = tuple(round(m * total_steps / self.total_steps) for m in self.milestones)
        return dataclasses.replace(
            self, milestones=ms, total_steps=total_steps, batch_size=batch_size or self.batch_size
        )


def lr_at(recipe: HeCifarRecipe, step: int) -> float:
    """LR used by optimizer step ``step`` (0-based): lr * gamma^(milestones <= step)."""
    return recipe.lr * recipe.gamma ** sum(step >= m for m in recipe.milestones)


def scheduled_lrs(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, steps: int) -> torch.Tensor:
    """The LR of ``opt``'s first group that each of ``steps`` iterations uses, stepping ``sched`` once
    per iteration (without optimizer steps, so torch's order warning is silenced): float64 (steps,)."""
    lrs = []
    with warnings.catch_warnings():  # stepping the scheduler alone warns "before optimizer.step()"
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            sched.step()
    return torch.tensor(lrs, dtype=torch.float64)


def make_optimizer(params, recipe: HeCifarRecipe) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]:
    """SGD + MultiStepLR of the recipe; step the scheduler once per iteration (not per epoch)."""
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, list(recipe.milestones), gamma=recipe.gamma)
