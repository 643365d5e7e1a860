"""Convolutional networks: a small configurable CNN, ResNet basic/bottleneck blocks and a
ResNet (CIFAR or ImageNet stem), a depthwise-separable block, parameter/FLOP counts and a
loader for torchvision-format ResNet weights.

Shapes: images (N, C, H, W) float; logits (N, num_classes).

Sources:
* ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
  (basic block Fig. 2, bottleneck Fig. 5, CIFAR stem and widths 16/32/64 in Sec. 4.2).
  Shortcuts that change shape use a 1x1 convolution + BN (the paper's option B), as
  torchvision does; the CIFAR paper nets use option A (zero padding), so our
  ``cifar_resnet20`` has a few more parameters than the paper's 0.27M.
* Zero-init of the last BN gamma in each residual branch: Goyal et al., "Accurate, Large
  Minibatch SGD", 2017, Sec. 5.1: each block then starts as relu(shortcut(x)).
* Depthwise separable convolution: Howard et al., "MobileNets", 2017, Sec. 3.1 (cost ratio
  1/Cout + 1/k**2, eq. 5); Chollet, "Xception", CVPR 2017.
* Module names follow torchvision.models.resnet (conv1, bn1, layer1.0.conv1, ...,
  downsample.0/1, fc), so a torchvision state_dict loads with :func:`load_torchvision_weights`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from kernels.layers.conv import conv_output_size

POOLS = ("max", "avg", "stride", "none")


@dataclasses.dataclass(frozen=True)
class SmallCNNConfig:
    """A stack of conv stages (conv -> [BN] -> ReLU -> downsample), then a linear head."""

    in_channels: int = 1
    """image channels (1 grey, 3 colour)"""
    image_size: int = 8
    """input height = width in pixels (8 for sklearn digits, 28 Fashion-MNIST, 32 CIFAR)"""
    channels: tuple[int, ...] = (8, 16)
    """output channels of each stage; each stage halves H and W unless pool='none'"""
    kernel_size: int = 3
    """square kernel side (pixels); padding k//2 keeps H and W inside a stage"""
    pool: str = "max"
    """downsampling per stage: 'max' / 'avg' (2x2 pooling), 'stride' (the conv has stride 2,
    no pooling layer) or 'none' (no downsampling)"""
    head: str = "flatten"
    """'flatten' (Linear over C*h*w features) or 'gap' (global average pool, Linear over C)"""
    batch_norm: bool = False
    """BatchNorm2d after each conv"""
    dropout: float = 0.0
    """dropout probability before the final Linear, in [0, 1)"""
    num_classes: int = 10
    """logits per sample"""

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"SmallCNNConfig: pool must be one of {POOLS}, got {self.pool!r}")
        if self.head not in ("flatten", "gap"):
            raise ValueError(f"SmallCNNConfig: head must be 'flatten' or 'gap', got {self.head!r}")
        if not self.channels or min(self.channels) < 1 or self.num_classes < 1:
            raise ValueError(
                f"SmallCNNConfig: channels and num_classes must be >= 1, got {self.channels}, {self.num_classes}"
            )
        if self.feature_shape()[1] < 1:
            raise ValueError(
                f"SmallCNNConfig: {len(self.channels)} downsampling stages shrink a "
                f"{self.image_size}px image to nothing; use fewer stages or pool='none'"
            )

    def stage_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after each stage, computed from the config alone (the designed shapes)."""
        h, out = self.image_size, []
        for c in self.channels:
            if self.pool == "stride":
                h = conv_output_size(h, self.kernel_size, 2, self.kernel_size // 2)
            elif self.pool in ("max", "avg"):
                h = h // 2
            out.append((c, h, h))
        return out

    def feature_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the last stage's output."""
        return self.stage_shapes()[-1]


SMALL_CNN_PRESETS: dict[str, SmallCNNConfig] = {
    # 8x8 sklearn digits, check mode: 1 -> 8 -> 16 channels, 16*2*2 features
    "tiny": SmallCNNConfig(),
    "digits": SmallCNNConfig(channels=(32, 64), batch_norm=True),
    "fashion": SmallCNNConfig(image_size=28, channels=(32, 64), batch_norm=True, dropout=0.25),
    "cifar_tiny": SmallCNNConfig(in_channels=3, image_size=32, channels=(8, 16, 32), head="gap", batch_norm=True),
    "cifar_small": SmallCNNConfig(in_channels=3, image_size=32, channels=(16, 32, 64), batch_norm=True),
    "cifar": SmallCNNConfig(in_channels=3, image_size=32, channels=(32, 64, 128), batch_norm=True, dropout=0.1),
}


def small_cnn_preset(name: str, **overrides: Any) -> SmallCNNConfig:
    """The named preset with fields replaced. Raises ValueError naming the valid presets."""
    if name not in SMALL_CNN_PRESETS:
        raise ValueError(f"unknown SmallCNN preset {name!r}; choose from {sorted(SMALL_CNN_PRESETS)}")
    return dataclasses.replace(SMALL_CNN_PRESETS[name], **overrides)


class SmallCNN(nn.Module):
    """``features`` (one nn.Sequential per stage, in ``features``) then ``head``.

    Args:
        config: a :class:`SmallCNNConfig` or a preset name.
    """

    def __init__(self, config: SmallCNNConfig | str = "tiny"):
        super().__init__()
        c = self.config = small_cnn_preset(config) if isinstance(config, str) else config
        stages, cin = [], c.in_channels
        for cout in c.channels:
            stride = 2 if c.pool == "stride" else 1
            layers: list[nn.Module] = [
                nn.Conv2d(cin, cout, c.kernel_size, stride, c.kernel_size // 2, bias=not c.batch_norm)
            ]
            if c.batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if c.pool == "max":
                layers.append(nn.MaxPool2d(2))
            elif c.pool == "avg":
                layers.append(nn.AvgPool2d(2))
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.features = nn.Sequential(*stages)
        fc, fh, fw = c.feature_shape()
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1)] if c.head == "gap" else []
        head.append(nn.Flatten())
        if c.dropout:
            head.append(nn.Dropout(c.dropout))
        head.append(nn.Linear(fc if c.head == "gap" else fc * fh * fw, c.num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of images x (N, in_channels, image_size, image_size).

        Raises ValueError for another input shape (the flatten head is sized for one).
        """
        c = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(
                f"SmallCNN expects (N, {c.in_channels}, {c.image_size}, {c.image_size}), got {tuple(x.shape)}"
            )
        return self.head(self.features(x))


# -- ResNet --------------------------------------------------------------------------------------
def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): two 3x3 convs.

    (N, cin, H, W) -> (N, width, ceil(H/stride), ceil(W/stride)). shortcut = identity when
    shapes match, else ``downsample`` (1x1 conv stride s + BN); ``residual=False`` drops
    the shortcut (a block of a "plain" net).
    """

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width, stride) if residual else None

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.residual:
            return self.relu(out)
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here, as torchvision "ResNet v1.5") -> 1x1 expand (x4),
    plus the shortcut: (N, cin, H, W) -> (N, 4*width, ceil(H/stride), ceil(W/stride))."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, cout, stride) if residual else None

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if not self.residual:
            return self.relu(out)
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """Shape of a :class:`ResNet`."""

    block: str = "basic"
    """'basic' (two 3x3) or 'bottleneck' (1x1, 3x3, 1x1 with 4x expansion)"""
    layers: tuple[int, ...] = (1, 1)
    """blocks per stage; stage i > 0 starts with stride 2"""
    widths: tuple[int, ...] = (8, 16)
    """block width of each stage (output channels = width * expansion)"""
    stem: str = "cifar"
    """'cifar' (3x3 conv stride 1, no max-pool) or 'imagenet' (7x7 stride 2 + 3x3 max-pool)"""
    stem_width: int | None = None
    """stem output channels; None means widths[0]"""
    in_channels: int = 3
    """image channels"""
    num_classes: int = 10
    """logits per sample"""
    zero_init_residual: bool = False
    """set gamma of each block's last BN to 0 (block starts as relu(shortcut(x)))"""
    residual: bool = True
    """False removes every shortcut (a "plain" net of the same depth, He et al. Sec. 4.1)"""

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ValueError(f"ResNetConfig: block must be one of {sorted(BLOCKS)}, got {self.block!r}")
        if self.stem not in ("cifar", "imagenet"):
            raise ValueError(f"ResNetConfig: stem must be 'cifar' or 'imagenet', got {self.stem!r}")
        if len(self.layers) != len(self.widths) or not self.layers or min(self.layers) < 1:
            raise ValueError(
                f"ResNetConfig: layers {self.layers} and widths {self.widths} need the same "
                f"length >= 1 and >= 1 block per stage"
            )


RESNET_PRESETS: dict[str, ResNetConfig] = {
    "tiny": ResNetConfig(),
    "cifar_resnet20": ResNetConfig(layers=(3, 3, 3), widths=(16, 32, 64)),
    "cifar_resnet56": ResNetConfig(layers=(9, 9, 9), widths=(16, 32, 64)),
    "resnet18": ResNetConfig(layers=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem="imagenet", num_classes=1000),
    "resnet50": ResNetConfig(
        block="bottleneck", layers=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem="imagenet", num_classes=1000
    ),
}


def resnet_preset(name: str, **overrides: Any) -> ResNetConfig:
    """The named preset with fields replaced. Raises ValueError naming the valid presets."""
    if name not in RESNET_PRESETS:
        raise ValueError(f"unknown ResNet preset {name!r}; choose from {sorted(RESNET_PRESETS)}")
    return dataclasses.replace(RESNET_PRESETS[name], **overrides)


class ResNet(nn.Module):
    """stem -> layer1..layerK -> global average pool -> fc; torchvision's module names.

    (N, in_channels, H, W) -> (N, num_classes). ``config`` is a :class:`ResNetConfig` or
    a preset name; ``block`` replaces the block class (same constructor as BasicBlock).
    """

    def __init__(self, config: ResNetConfig | str = "tiny", block: type[nn.Module] | None = None):
        super().__init__()
        c = self.config = resnet_preset(config) if isinstance(config, str) else config
        block = block or BLOCKS[c.block]
        width = c.stem_width or c.widths[0]
        if c.stem == "imagenet":
            self.conv1 = nn.Conv2d(c.in_channels, width, 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(c.in_channels, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        cin = width
        for i, (n, w) in enumerate(zip(c.layers, c.widths)):
            blocks = []
            for j in range(n):
                b = block(cin, w, 2 if (i > 0 and j == 0) else 1, residual=c.residual)
                if c.zero_init_residual:
                    nn.init.zeros_(b.last_bn().weight)
                blocks.append(b)
                cin = w * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(c.layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, c.num_classes)

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(self.n_stages)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last stage: (N, C_last, h, w)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"ResNet expects (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))  # (N, C_last) -> logits


# -- depthwise separable ---------------------------------------------------------------------
class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv (groups = cin, one filter per channel) then pointwise 1x1.

    (N, cin, H, W) -> (N, cout, Ho, Wo), Ho as a k x k conv with this stride/padding/dilation.
    No BN/ReLU between the two (MobileNets puts them there; leaving them out keeps this
    equal to the grouped-conv + 1x1 composition the task checks against).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, kernel_size, stride, padding, dilation, groups=cin, bias=bias)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def conv_params(cin: int, cout: int, k: int, groups: int = 1, bias: bool = True) -> int:
    """Parameters of a k x k conv: cout * (cin/groups) * k * k weights (+ cout biases)."""
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def separable_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    """Parameters of :class:`DepthwiseSeparableConv`: cin*k*k + cin*cout (+ cin + cout)."""
    return conv_params(cin, cin, k, cin, bias) + conv_params(cin, cout, 1, 1, bias)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (all, or only those with requires_grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# -- torchvision-format weights -------------------------------------------------------------
def load_torchvision_weights(
    model: nn.Module, source: str | os.PathLike | dict[str, torch.Tensor], *, skip_head: bool | None = None
) -> dict[str, list[str]]:
    """Load a torchvision-format state_dict (keys ``conv1.weight``, ``bn1.running_mean``,
    ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.weight``, ...) into
    ``model`` (a :class:`ResNet` or any module with the same names).

    Args:
        source: a file written by ``torch.save`` (a state_dict, or a dict holding one under
            'state_dict' or 'model'), or the dict itself. Files load with
            ``weights_only=True``: no code in the file runs.
        skip_head: leave ``fc.*`` out (fine-tuning to other classes). None means "when the
            file's fc shape differs from the model's".
    Returns {"loaded": keys, "skipped": keys} (skipped = the head, if skipped).
    Raises:
        FileNotFoundError: no such file.
        KeyError: keys missing on either side (lists up to 8 of each).
        ValueError: a tensor whose shape differs from the model's (names key and shapes).
    """
    if isinstance(source, dict):
        state = source
    else:
        state = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
        for k in ("state_dict", "model"):
            if isinstance(state, dict) and k in state and isinstance(state[k], dict):
                state = state[k]
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    own = model.state_dict()
    head = [k for k in state if k.startswith("fc.")]
    if skip_head is None:
        skip_head = any(k in own and own[k].shape != state[k].shape for k in head)
    skipped = head if skip_head else []
    wanted = {k: v for k, v in state.items() if k not in skipped}
    missing = [k for k in own if k not in wanted and not (skip_head and k.startswith("fc."))]
    unexpected = [k for k in wanted if k not in own]
    if missing or unexpected:
        raise KeyError(
            f"load_torchvision_weights: state_dict does not match the model: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}; is the model config the same architecture?"
        )
    for k, v in wanted.items():
        if own[k].shape != v.shape:
            raise ValueError(
                f"load_torchvision_weights: {k} has shape {tuple(v.shape)} in the file but "
                f"{tuple(own[k].shape)} in the model; check widths/layers of the config"
            )
    model.load_state_dict(wanted, strict=False)
    return {"loaded": sorted(wanted), "skipped": sorted(skipped)}
