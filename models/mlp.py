"""A multilayer perceptron with a frozen config and named presets.

Shapes: input (N, *) is flattened to (N, in_features); output logits (N, out_features).

Layer order per hidden layer: Linear -> [BatchNorm1d] -> activation -> [Dropout]
(Ioffe & Szegedy 2015 put BN before the non-linearity). Weights use PyTorch's default
``nn.Linear`` init (Kaiming-uniform with a=sqrt(5)), so a seeded ``torch.manual_seed``
before construction gives the same parameters on every machine.

Presets:

* ``tiny``: 64 -> 32 -> 10, for sklearn's 8x8 digits in check mode (2,410 parameters).
* ``digits``: 64 -> 128 -> 64 -> 10 for the same digits at benchmark size.
* ``mnist``: 784 -> 256 -> 128 -> 10.
* ``lecun98``: 784 -> 300 -> 100 -> 10, the 3-layer net of LeCun et al., "Gradient-based
  learning applied to document recognition", Proc. IEEE 1998 (Table/Fig. 9, "3-layer NN,
  300+100 hidden units", 3.05% test error).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """Shape and options of an :class:`MLP`."""

    in_features: int = 784
    """input features after flattening (28*28 = 784 for MNIST, 8*8 = 64 for sklearn digits)"""
    hidden: tuple[int, ...] = (256, 128)
    """width of each hidden layer, in order; () gives a linear classifier"""
    out_features: int = 10
    """classes (logits per sample)"""
    activation: str = "relu"
    """non-linearity after each hidden layer: one of relu, gelu, tanh, sigmoid"""
    batch_norm: bool = False
    """BatchNorm1d after each hidden Linear (makes a sample's output depend on its batch)"""
    dropout: float = 0.0
    """dropout probability after each hidden activation, in [0, 1)"""

    def __post_init__(self) -> None:
        if self.in_features < 1 or self.out_features < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(
                f"MLPConfig: every width must be >= 1, got in={self.in_features}, "
                f"hidden={self.hidden}, out={self.out_features}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLPConfig: unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MLPConfig: dropout must be in [0, 1), got {self.dropout}")

    def n_params(self) -> int:
        """Parameter count (weights, biases, BN affine parameters)."""
        widths = (self.in_features, *self.hidden, self.out_features)
        n = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        return n + (2 * sum(self.hidden) if self.batch_norm else 0)


PRESETS: dict[str, MLPConfig] = {
    "tiny": MLPConfig(in_features=64, hidden=(32,), out_features=10),
    "digits": MLPConfig(in_features=64, hidden=(128, 64), out_features=10),
    "mnist": MLPConfig(in_features=784, hidden=(256, 128), out_features=10),
    "lecun98": MLPConfig(in_features=784, hidden=(300, 100), out_features=10),
}


def preset(name: str, **overrides) -> MLPConfig:
    """The named preset, with fields replaced by ``overrides``.

    Raises:
        ValueError: an unknown preset name (lists the valid ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown MLP preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class MLP(nn.Module):
    """Fully connected classifier; see the module docstring for layer order and presets.

    Args:
        config: an :class:`MLPConfig` or a preset name.
    """

    def __init__(self, config: MLPConfig | str = "tiny"):
        super().__init__()
        self.config = preset(config) if isinstance(config, str) else config
        c = self.config
        layers: list[nn.Module] = []
        width = c.in_features
        for h in c.hidden:
            layers.append(nn.Linear(width, h))
            if c.batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[c.activation]())
            if c.dropout:
                layers.append(nn.Dropout(c.dropout))
            width = h
        layers.append(nn.Linear(width, c.out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, out_features) of ``x`` (N, *) whose trailing dims hold in_features values.

        Raises:
            ValueError: when the trailing dims do not multiply to ``in_features``.
        """
        if x.dim() < 1 or math.prod(x.shape[1:]) != self.config.in_features:
            raise ValueError(
                f"MLP expects (N, ...) with {self.config.in_features} features per sample, got shape {tuple(x.shape)}"
            )
        return self.net(x.reshape(x.shape[0], self.config.in_features))  # (N, in_features); -1 is ambiguous at N=0
