"""Dropout by hand (inverted dropout, Srivastava et al., JMLR 2014; PyTorch ``nn.Dropout`` doc).

Training: each element is kept with probability ``1 - p`` and the kept ones are scaled by
``1 / (1 - p)``, so ``E[dropout(x)] = x`` and evaluation needs no rescaling; evaluation is
the identity (the input tensor itself is returned, as ``F.dropout`` does).

Two mask rules, both drawn from a ``torch.Generator`` (the global one when None):

* ``rule="rand"`` (the default, this module's own rule): ``keep = torch.rand(x.shape,
  generator=g) >= p``. ``torch.rand`` gives float32 multiples of 2**-24 in [0, 1), so
  P(keep) = 1 - ceil(p * 2**24) / 2**24, which is 1 - p up to 6e-8. The same generator
  state gives the same mask on every machine of the same device type.
* ``rule="bernoulli"``: ``keep = torch.empty_like(x).bernoulli_(1 - p, generator=g) != 0``,
  the draw ``F.dropout`` makes on CPU (ATen ``_dropout_impl``: ``noise.bernoulli_(1 - p);
  noise.div_(1 - p); input * noise``), so under the same generator state the mask is
  bit-identical to ``F.dropout``'s on CPU. On CPU builds with MKL, ``bernoulli_`` with a
  scalar probability seeds an MKL stream from the generator instead of calling
  ``torch.rand``, so the two rules draw different masks from the same seed: they agree only
  in distribution. On CUDA, ``F.dropout`` uses the fused ``native_dropout`` kernel (Philox,
  its own draw order), so neither rule is bit-identical to it there.

``kernels.rng.philox.dropout_mask`` is the third, counter-based rule (``u > p`` from
Philox(seed, offset), regenerable without storing the mask) used by the Triton/CUDA kernels.

Shapes: any; output has x's shape, dtype and device. Errors: ValueError for p outside
[0, 1] (torch's message), ValueError for an unknown rule.
"""

from __future__ import annotations

import torch
from torch import nn

RULES = ("rand", "bernoulli")


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout_mask(
    x: torch.Tensor, p: float, *, generator: torch.Generator | None = None, rule: str = "rand"
) -> torch.Tensor:
    """Bool keep-mask of x's shape (True = kept), drawn by ``rule`` (see the module docstring).

    The generator must live on x's device (``torch.Generator(device=x.device)``).
    """
    _check_p(p)
    if rule == "rand":
        return torch.rand(x.shape, generator=generator, device=x.device) >= p
    if rule == "bernoulli":
        # float noise as ATen draws it, in x's dtype: the draw consumed depends on the dtype
        return torch.empty_like(x).bernoulli_(1.0 - p, generator=generator) != 0
    raise ValueError(f"unknown dropout mask rule {rule!r}; choose one of {RULES}")


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
    rule: str = "rand",
) -> torch.Tensor:
    """Inverted dropout: ``x * keep / (1 - p)`` in training, ``x`` itself otherwise.

    Args:
        x: any shape, floating dtype.
        p: drop probability in [0, 1]; p == 1 gives zeros (as torch), p == 0 returns x.
        training: False returns ``x`` unchanged (the same tensor object).
        generator: RNG for the mask, on x's device; None uses the global generator.
        rule: ``"rand"`` or ``"bernoulli"`` (module docstring).
    Returns a new tensor (x's shape/dtype/device) in training with 0 < p < 1. Gradient:
    ``dL/dx = dL/dy * keep / (1 - p)`` (autograd through the multiply).
    """
    _check_p(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * torch.zeros((), dtype=x.dtype, device=x.device)
    keep = dropout_mask(x, p, generator=generator, rule=rule)
    # one multiply by (keep * scale): the mask becomes a 0 / (1/(1-p)) tensor in x's dtype
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class Dropout(nn.Module):
    """``nn.Dropout`` by hand: :func:`dropout` with ``self.training``.

    Args:
        p: drop probability in [0, 1].
        generator: optional RNG for the masks (on the input's device).
        rule: mask rule, ``"rand"`` or ``"bernoulli"``.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None, rule: str = "rand"):
        super().__init__()
        _check_p(p)
        if rule not in RULES:
            raise ValueError(f"unknown dropout mask rule {rule!r}; choose one of {RULES}")
        self.p, self.generator, self.rule = p, generator, rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, generator=self.generator, rule=self.rule)

    def extra_repr(self) -> str:
        return f"p={self.p}, rule={self.rule}"
