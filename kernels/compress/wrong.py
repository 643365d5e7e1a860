"""Wrong compression steps: the mutants of the compression tasks (each one a plausible mistake).

advanced.pruning swaps these in for ``kernels.compress.prune``'s right versions and
advanced.quantization for ``kernels.compress.affine``'s, deployment.qat for ``affine.fake_quantize``
and ``kernels.compress.qat.prepare``; each check must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from kernels.compress import affine
from kernels.compress import prune as P


def zeroed_in_place(model: nn.Module, amount: float) -> nn.Module:
    """WRONG: zeros the smallest ``amount`` of |w| once, with no mask: training moves them again."""
    ws = [m.weight for m, _ in P.weights(model)]
    cut = torch.cat([w.detach().abs().flatten() for w in ws]).kthvalue(round(amount * sum(w.numel() for w in ws)))
    with torch.no_grad():
        for w in ws:
            w[w.abs() <= cut.values] = 0.0
    return model


def per_layer(model: nn.Module, amount: float) -> nn.Module:
    """WRONG: each layer pruned to the share on its own (``l1_unstructured``): no common threshold."""
    for m, name in P.weights(model):
        prune.l1_unstructured(m, name, amount=amount)
    return model


def restore_original(model: nn.Module) -> nn.Module:
    """WRONG: "removes" pruning by putting the unpruned ``weight_orig`` back."""
    for m in model.modules():
        if hasattr(m, "weight_orig"):
            orig = m.weight_orig.detach().clone()
            P.remove_all(m)
            with torch.no_grad():
                m.weight.copy_(orig)
    return model


def bias_left(conv: nn.Conv2d, amount: float) -> torch.Tensor:
    """WRONG: prunes whole filters by L2 norm but leaves their bias, whose ReLU(b) still flows on."""
    prune.ln_structured(conv, "weight", amount=amount, n=2, dim=0)
    return conv.weight_mask.flatten(1).any(dim=1)


def zero_point_subtracted(x, scale, zero_point, qmin, qmax):
    """WRONG: q = round(x / s) - z (the zero point's sign flipped); arguments as ``affine.quantize``."""
    return affine.quantize(x, scale, -zero_point, qmin, qmax)


def zero_point_mid_range(lo, hi, qmin, qmax):
    """WRONG: min/max scale, but z = the middle of [qmin, qmax] (the symmetric scheme's zero point)
    with an asymmetric range; arguments as ``affine.minmax_qparams``."""
    scale, _ = affine.minmax_qparams(lo, hi, qmin, qmax)
    return scale, (qmin + qmax + 1) // 2


def fake_quant_no_clamp_mask(x, scale, zero_point, qmin, qmax):
    """WRONG: fake quantization whose straight-through gradient is 1 everywhere, also where the
    clamp is active; arguments as ``affine.fake_quantize``."""
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return x + ((q - zero_point) * scale - x).detach()


def qat_all_but_last(model: nn.Module, bits: int) -> nn.Module:
    """WRONG: ``kernels.compress.qat.prepare`` that leaves the last Linear (the classifier) float."""
    from kernels.compress import qat

    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return qat.prepare(model, bits, filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn != last)
