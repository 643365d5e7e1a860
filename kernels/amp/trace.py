"""Record which aten ops run and in which dtypes: how two mixed-precision schemes are compared
op for op (``torch.utils._python_dispatch.TorchDispatchMode`` sees every op after autocast
has inserted its casts, backward included).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from models.attention_block import AttentionBlock


class OpRecorder(TorchDispatchMode):
    """Records (aten op name, output dtypes) of every op dispatched while active, in ``ops``."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, tuple[str, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else [out]
        dtypes = tuple(str(o.dtype).replace("torch.", "") for o in outs if isinstance(o, torch.Tensor))
        self.ops.append((func.overloadpacket.__name__, dtypes))
        return out


def block_setup(batch: int, seq: int, dim: int, classes: int, device, seed: int):
    """(an ``AttentionBlock(dim, classes)`` on ``device``, x (batch, seq, dim), labels (batch, seq)):
    float32 master weights, as AMP keeps them; weights and data drawn from ``seed``."""
    torch.manual_seed(seed)
    model = AttentionBlock(dim, classes).to(device)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq, dim, generator=g).to(device)
    y = torch.randint(0, classes, (batch, seq), generator=g).to(device)
    return model, x, y


def block_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position: logits (B, T, classes) -> (B*T, classes) against (B*T,)."""
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def traced_backward(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: AbstractContextManager):
    """Forward :func:`block_loss` inside ``autocast`` and backward, under an :class:`OpRecorder`.

    Returns (the recorder's ops (name, output dtypes) in order, the detached loss, every
    parameter's gradient in ``parameters()`` order).
    """
    rec = OpRecorder()
    with rec:
        with autocast:
            loss = block_loss(model, x, y)
        loss.backward()
    return rec.ops, loss.detach(), [p.grad for p in model.parameters()]


def block_step(
    model: torch.nn.Module, opt, x: torch.Tensor, y: torch.Tensor, autocast: Callable[[], AbstractContextManager]
):
    """One training step: zero the gradients, :func:`block_loss` inside ``autocast()`` (a fresh
    context manager per call), backward (outside it, as AMP does), ``opt.step()``."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = block_loss(model, x, y)
    loss.backward()
    opt.step()
