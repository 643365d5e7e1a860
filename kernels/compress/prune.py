"""Pruning with ``torch.nn.utils.prune`` and the steps that make it pay: removal and slicing.

``torch.nn.utils.prune`` keeps ``weight_orig`` (a Parameter the optimizer updates) and
``weight_mask`` (a buffer) and recomputes ``weight = weight_orig * weight_mask`` in a forward
pre-hook, so pruned entries stay zero however the optimizer moves ``weight_orig``. ``prune.remove``
folds the mask in (a plain ``weight`` with zeros). Zeros in a dense tensor cost as much as any
other value: only a sparse format (CSR) or smaller shapes (structured pruning, then slicing the
channels out) make the model faster.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune


def weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") for every Conv2d and Linear, the parameters pruning acts on."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def global_magnitude(model: nn.Module, amount: float) -> nn.Module:
    """Prune ``amount`` (share in [0, 1)) of all Conv2d/Linear weights together by |w| (in place).

    One threshold for the whole model (``prune.global_unstructured`` with ``L1Unstructured``), so
    layers with many small weights lose more of them. Returns ``model``.
    Raises ValueError for an amount outside [0, 1).
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"pruning amount must be a share in [0, 1), got {amount}")
    prune.global_unstructured(weights(model), pruning_method=prune.L1Unstructured, amount=amount)
    return model


def remove_all(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned parameter: masks folded into plain parameters (in place)."""
    for m in model.modules():
        for name in [k[: -len("_orig")] for k, _ in m.named_parameters(recurse=False) if k.endswith("_orig")]:
            prune.remove(m, name)
    return model


def sparsity(tensors) -> float:
    """Share of exact zeros over the given tensors (an iterable of tensors), in [0, 1]."""
    tensors = list(tensors)
    zeros = sum(int((t == 0).sum()) for t in tensors)
    return zeros / max(1, sum(t.numel() for t in tensors))


def prune_channels(conv: nn.Conv2d, amount: float) -> torch.Tensor:
    """Prune ``amount`` of the output channels of ``conv`` by L2 norm, the bias with them (in place).

    ``prune.ln_structured`` masks whole filters but leaves the bias, whose ReLU(b) would still
    reach the next layer; the same channel mask goes on the bias so that a pruned channel outputs
    exactly 0. Returns the bool (out,) mask of kept channels.
    """
    prune.ln_structured(conv, "weight", amount=amount, n=2, dim=0)
    keep = conv.weight_mask.flatten(1).any(dim=1)  # (out,)
    if conv.bias is not None:
        prune.custom_from_mask(conv, "bias", keep.to(conv.bias.dtype))
    return keep


def slice_channels(layer: nn.Conv2d, nxt: nn.Module, keep: torch.Tensor, spatial: int = 1):
    """New (smaller) ``layer`` and ``nxt`` with only the channels in ``keep`` (bool (C,)).

    ``layer``: Conv2d whose output channels are cut (masks removed first). ``nxt``: the Conv2d
    reading those channels, or a Linear reading them flattened channel-major with ``spatial``
    values per channel. Returns (layer', nxt'), float32 copies; raises TypeError for another ``nxt``.
    """
    idx = keep.nonzero().flatten()
    small = nn.Conv2d(layer.in_channels, len(idx), layer.kernel_size, layer.stride, layer.padding,
                      bias=layer.bias is not None)  # fmt: skip
    with torch.no_grad():
        small.weight.copy_(layer.weight[idx])
        if layer.bias is not None:
            small.bias.copy_(layer.bias[idx])
        if isinstance(nxt, nn.Conv2d):
            after = nn.Conv2d(len(idx), nxt.out_channels, nxt.kernel_size, nxt.stride, nxt.padding,
                              bias=nxt.bias is not None)  # fmt: skip
            after.weight.copy_(nxt.weight[:, idx])
        elif isinstance(nxt, nn.Linear):
            after = nn.Linear(len(idx) * spatial, nxt.out_features, bias=nxt.bias is not None)
            w = nxt.weight.view(nxt.out_features, -1, spatial)  # (out, C, spatial)
            after.weight.copy_(w[:, idx].reshape(nxt.out_features, -1))  # (out, C' * spatial)
        else:
            raise TypeError(f"slice_channels: the next layer must be Conv2d or Linear, got {type(nxt).__name__}")
        if nxt.bias is not None:
            after.bias.copy_(nxt.bias)
    return small, after


def prune_and_slice(net: nn.Sequential, channel_prune: Callable = prune_channels):
    """(``net`` with half the filters of both convs pruned and the masks removed, a sliced copy).

    ``net``: ``kernels.compress.digits.cnn()`` (convs at 0 and 2, head Linear at 6 reading 4x4 maps).
    ``channel_prune(conv, 0.5)`` prunes in place and returns the bool (out,) kept-channel mask."""
    keep1, keep2 = channel_prune(net[0], 0.5), channel_prune(net[2], 0.5)
    remove_all(net)
    small = copy.deepcopy(net)
    small[0], conv2 = slice_channels(net[0], net[2], keep1)
    small[2], small[6] = slice_channels(conv2, net[6], keep2, spatial=16)  # 4x4 after pooling
    return net, small


def reload(model: nn.Module, fresh: nn.Module) -> nn.Module:
    """``fresh`` with ``model``'s state dict through ``torch.save``/``torch.load`` (weights_only).

    Strict load: a leftover ``weight_orig``/``weight_mask`` raises RuntimeError. Returns ``fresh``."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    return fresh


def semi_structured_24(w: torch.Tensor, device: torch.device):
    """(``mask_2_4(w)`` float16 on ``device``, the same as a ``torch.sparse`` 2:4 semi-structured tensor).

    Raises NotImplementedError off CUDA or where the build/GPU has no 2:4 kernel (before sm80)."""
    from torch.sparse import to_sparse_semi_structured

    if torch.device(device).type != "cuda":
        raise NotImplementedError("2:4 semi-structured kernels need a CUDA GPU (sm80 or newer)")
    w24 = mask_2_4(w).to(device).half()
    try:
        return w24, to_sparse_semi_structured(w24)
    except (RuntimeError, NotImplementedError, ValueError) as e:
        raise NotImplementedError(f"no 2:4 kernel here: {e}"[:200]) from e


def mask_2_4(w: torch.Tensor) -> torch.Tensor:
    """``w`` (out, in) with the 2 smallest |w| of every 4 consecutive inputs zeroed (NVIDIA's 2:4
    pattern, 50 % sparsity). ``in`` must be a multiple of 4 (ValueError otherwise). Same dtype/device."""
    if w.dim() != 2 or w.shape[1] % 4:
        raise ValueError(f"mask_2_4 needs a 2-D weight with inputs a multiple of 4, got {tuple(w.shape)}")
    groups = w.reshape(w.shape[0], -1, 4)  # (out, in / 4, 4)
    top = groups.abs().topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)
    return (groups * mask).reshape(w.shape)


def pruned_matrix(features: int, batch: int, sparsity: float, generator: torch.Generator):
    """(W float32 (features, features) ~ N(0, 1) with its smallest ``sparsity`` share of |w| zeroed by
    ``prune.l1_unstructured``, x float32 (batch, features) ~ N(0, 1)), on the CPU, from ``generator``."""
    lin = nn.Linear(features, features, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(features, features, generator=generator))
    if sparsity > 0:
        prune.l1_unstructured(lin, "weight", amount=sparsity)
    return lin.weight.detach().clone(), torch.randn(batch, features, generator=generator)


def threshold_split(before: list[torch.Tensor], after: list[torch.Tensor]) -> tuple[float, float]:
    """(largest original |w| among the entries pruned to 0, smallest original |w| among those kept),
    over every layer: weights ``before`` pruning and ``after`` it, paired by layer, same shapes.
    One global magnitude threshold means the first is <= the second."""
    pairs = list(zip(before, after, strict=True))
    cut = max(float(b[a == 0].abs().max()) for b, a in pairs if (a == 0).any())
    kept = min(float(b[a != 0].abs().min()) for b, a in pairs if (a != 0).any())
    return cut, kept


def semi_structured_products(
    features: int, batch: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x W^T through the 2:4 semi-structured kernel, the same product with the 2:4-masked dense W),
    float16 on CUDA, x (batch, features) and W (features, features) from :func:`pruned_matrix`.

    Raises NotImplementedError off CUDA or where the build/GPU has no 2:4 kernel (before sm80)."""
    w, x = pruned_matrix(features, batch, 0.0, generator)
    w24, ws = semi_structured_24(w, torch.device("cuda"))
    xh = x.cuda().half()
    return torch.nn.functional.linear(xh, ws), torch.nn.functional.linear(xh, w24)
