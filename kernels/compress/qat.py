"""torchao quantization-aware training for low-bit Linear weights (torchao 0.18 API).

``prepare`` swaps every ``nn.Linear`` for a ``FakeQuantizedLinear`` whose weight passes through an
``IntxFakeQuantizer`` (symmetric, per output channel, scale = max|w_c| / ((qmax - qmin) / 2)
recomputed every step) on each forward; the optimizer keeps updating the float32 weights through the
straight-through gradient. ``convert`` swaps them back and stores the weights as integers
(``IntxWeightOnlyConfig``: ``IntxUnpackedToInt8Tensor``, dequantized on the fly).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kernels.compress.ao import torchao

INT_DTYPES = {2: torch.int2, 3: torch.int3, 4: torch.int4, 8: torch.int8}


def weight_config(bits: int):
    """torchao ``IntxFakeQuantizeConfig``: int{bits} weights, per channel, symmetric.

    Raises ValueError for bits outside {2, 3, 4, 8}.
    """
    if bits not in INT_DTYPES:
        raise ValueError(f"weight bits must be one of {sorted(INT_DTYPES)}, got {bits}")
    torchao()
    from torchao.quantization.qat import IntxFakeQuantizeConfig

    return IntxFakeQuantizeConfig(INT_DTYPES[bits], "per_channel", is_symmetric=True)


def prepare(model: nn.Module, bits: int, filter_fn=None) -> nn.Module:
    """Insert weight fake quantizers in place (torchao ``QATConfig(step="prepare")``); returns ``model``.

    ``filter_fn(module, fqn) -> bool`` limits which Linear layers are swapped (default: all).
    """
    torchao()
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(weight_config=weight_config(bits), step="prepare"), filter_fn=filter_fn)
    return model


def convert(model: nn.Module, bits: int) -> nn.Module:
    """Fake-quantized model -> integer weights in place (``QATConfig(step="convert")`` then
    ``IntxWeightOnlyConfig`` with the same dtype and granularity); returns ``model``."""
    torchao()
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(step="convert"))
    quantize_(model, IntxWeightOnlyConfig(weight_dtype=INT_DTYPES[bits], granularity=PerAxis(0)))
    return model


def fake_quantized_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every torchao ``FakeQuantizedLinear`` in ``model``."""
    torchao()
    from torchao.quantization.qat import FakeQuantizedLinear

    return [(n, m) for n, m in model.named_modules() if isinstance(m, FakeQuantizedLinear)]


def weight_only(layers: list[tuple[str, nn.Module]], bits: int) -> bool:
    """True when each of :func:`fake_quantized_layers`' ``layers`` fake-quantizes its weight to
    int{bits} and has no activation fake quantizer (what :func:`prepare` plans)."""
    return all(
        m.weight_fake_quantizer.config.dtype == INT_DTYPES[bits] and m.activation_fake_quantizer is None
        for _, m in layers
    )


def library_fake_quantizers() -> dict[str, Callable[..., torch.Tensor]]:
    """The fake quantizers a hand-written one is compared with, each called ``fq(x, scale, zero_point,
    qmin, qmax)`` with a float scale and int zero point on x (1, N): torchao's per-channel-group
    kernel (the one its ``IntxFakeQuantizer`` runs; one group of N columns) and
    ``torch.fake_quantize_per_tensor_affine``."""
    torchao()
    from torchao.quantization.qat.utils import _fake_quantize_per_channel_group

    def ao(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
        zp = torch.full((1, 1), zero_point, dtype=torch.int32)
        return _fake_quantize_per_channel_group(x, torch.tensor([[scale]]), zp, qmin, qmax, x.shape[-1])

    return {"torchao": ao, "torch": torch.fake_quantize_per_tensor_affine}


def forward_backward(fq: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fq(x), d fq(x).sum() / dx)``, both detached: the forward values and the gradient that
    reaches the input (for a fake quantizer, its straight-through mask)."""
    v = x.detach().clone().requires_grad_()
    out = fq(v)
    out.sum().backward()
    assert v.grad is not None  # fq's output depends on v
    return out.detach(), v.grad
