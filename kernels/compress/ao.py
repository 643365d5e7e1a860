"""torchao's PT2E int8 flow and dynamic int8, wrapped for the compression tasks.

Import paths are those of torchao 0.18 (``torchao.quantization.pt2e``): the PT2E flow left
``torch.ao.quantization`` for torchao, and ``torch.ao.quantization`` itself is deprecated
(its own warning: "torch.ao.quantization is deprecated and will be removed in 2.10").
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from typing import Any

import torch
from torch import nn


def torchao() -> Any:
    """Import torchao quietly (it warns once per optional CUDA/C++ kernel library it cannot load on a
    CPU-only build; none is used here). Returns the module. Raises ImportError when it is missing."""
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torchao as ao

    return ao


def observer_qparams(x: torch.Tensor, dtype: torch.dtype) -> tuple[float, int]:
    """(scale, zero point) torchao's ``MinMaxObserver(dtype=dtype)`` picks after seeing ``x``: the
    reference for :func:`kernels.compress.affine.minmax_qparams`. Raises ImportError without torchao."""
    torchao()
    from torchao.quantization.pt2e.observer import MinMaxObserver

    obs = MinMaxObserver(dtype=dtype)
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    return float(scale), int(zero_point)


def pt2e_int8(model: nn.Module, example: torch.Tensor, calibration: torch.Tensor) -> torch.fx.GraphModule:
    """Static int8 PT2E: export, annotate with ``X86InductorQuantizer``, observe, convert.

    Args:
        model: float32 module in eval mode taking (B, ...) inputs.
        example: (B, ...) example input, B >= 2 (export specialises batch sizes 0 and 1).
        calibration: (N, ...) float32 inputs the observers see before ``convert_pt2e``.
    Returns a GraphModule: uint8 activations (per tensor), int8 weights (per channel) held as
    int8 constants, q/dq ops around each linear; float32 logits. It still holds the unused float32
    weights: pass it through :func:`drop_unused_state` before saving.
    """
    torchao()
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    batch = torch.export.Dim("batch", min=1)
    gm = torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        prepared(calibration)  # observers record min/max (activation histograms) here
    return convert_pt2e(prepared)


def drop_unused_state(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Delete parameters and buffers no graph node reads (in place; returns ``gm``).

    ``convert_pt2e`` folds each weight into an int8 constant but leaves the float32 original on
    its submodule, so a saved state dict would carry both copies.
    """
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    names = [n for n, _ in gm.named_parameters()] + [n for n, _ in gm.named_buffers()]
    for name in names:
        if name not in used:
            owner, _, attr = name.rpartition(".")
            mod = gm.get_submodule(owner) if owner else gm
            delattr(mod, attr)
    return gm


def dynamic_int8(model: nn.Module) -> nn.Module:
    """torchao dynamic int8 (``Int8DynamicActivationInt8WeightConfig``): int8 per-channel weights,
    activations quantized per token at run time. Quantizes ``model`` in place and returns it."""
    torchao()
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return model


def saved_bytes(obj: Any) -> int:
    """Bytes of ``torch.save(obj)`` (a state dict: what a deployment ships)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def count_ops(gm: torch.fx.GraphModule, needle: str) -> int:
    """Graph call nodes whose target's name contains ``needle`` (e.g. ``dequantize_per_channel``)."""
    return sum(1 for n in gm.graph.nodes if n.op == "call_function" and needle in str(n.target))


def pt2e_weights(gm: torch.fx.GraphModule, model: nn.Module) -> list[tuple]:
    """(int8 weight (out, in), scale (out, 1), zero point (out, 1), float weight (out, in)) per Linear
    of ``model``, from its PT2E-converted ``gm``: PT2E names the folded int8 weights
    ``_frozen_param{k}`` and their per-channel qparams ``_scale_{k}``, ``_zero_point_{k}``."""
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [(getattr(gm, f"_frozen_param{k}"), getattr(gm, f"_scale_{k}")[:, None],  # (out, 1)
             getattr(gm, f"_zero_point_{k}")[:, None], m.weight.detach())
            for k, m in enumerate(lin)]  # fmt: skip


def cpu_has_vnni() -> bool:
    """True when /proc/cpuinfo lists avx512_vnni, avx_vnni or amx_int8 (x86 int8 dot products);
    False elsewhere or where /proc/cpuinfo cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(k in flags for k in ("avx512_vnni", "avx_vnni", "amx_int8"))


def legacy_dynamic(model: nn.Module) -> nn.Module:
    """A copy of ``model`` through ``torch.ao.quantization.quantize_dynamic`` (deprecated; fbgemm int8
    kernels, qint8 Linear weights).

    Raises:
        NotImplementedError: this torch no longer has it.
    """
    q = getattr(getattr(torch, "ao", None), "quantization", None)
    if q is None or not hasattr(q, "quantize_dynamic"):
        raise NotImplementedError("torch.ao.quantization.quantize_dynamic is gone from this torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return q.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def compiled_warm(model: nn.Module, x: torch.Tensor) -> Any:
    """``torch.compile(model)`` already called once on ``x`` without grad, so the compile (inductor,
    seconds) happens here and not in a timed region; end its workers with :func:`stop_compile_workers`."""
    fast = torch.compile(model)
    with torch.no_grad():
        fast(x)
    return fast


def stop_compile_workers() -> None:
    """Inductor may start a pool of compile worker processes (many-core machines): end them."""
    from torch._inductor.async_compile import shutdown_compile_workers

    shutdown_compile_workers()
