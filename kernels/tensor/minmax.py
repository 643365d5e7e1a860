"""Min-max scaling along any dim, three ways: (x - min) / (max - min) per slice, constant slices -> 0.

``dim`` is an int, a tuple of ints (any order, negative allowed) or None (the whole tensor).
Constant slices (span 0) map to 0, as scikit-learn's ``minmax_scale`` does. NaN rule: a slice
that holds a NaN is NaN throughout (its min and max are NaN, as ``torch.amin`` gives), in all
three versions; scikit-learn instead ignores NaN in the statistics, which would cost a full-size
pass here.
"""

from __future__ import annotations

import torch


def dims_of(dim: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``dim`` as a sorted tuple of non-negative dims; None means every dim.

    Raises:
        IndexError: a dim out of range. ValueError: a dim given twice.
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"minmax: dim {d} out of range for a {ndim}-d tensor (valid {-ndim}..{ndim - 1})")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"minmax: dim {dim} names a dimension twice")
    return tuple(sorted(out))


def minmax_stats(x: torch.Tensor, dim=None, keepdim: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max - min) of ``x`` over ``dim``; shapes as ``torch.amin(x, dim, keepdim)``."""
    dims = dims_of(dim, x.ndim)
    lo, hi = x.amin(dims, keepdim=keepdim), x.amax(dims, keepdim=keepdim)
    return lo, hi - lo


def _scale(x: torch.Tensor, lo: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    # reciprocal on the reduced tensor: one small division instead of numel large ones;
    # 0 where the slice is constant, so (x - lo) * 0 = 0 and no NaN appears, and no
    # full-size torch.where is needed
    inv = torch.where(span > 0, 1.0 / span, torch.zeros_like(span))
    return torch.sub(x, lo).mul_(inv)  # kept dims broadcast back; one output buffer


def minmax_naive(x: torch.Tensor, dim=None) -> torch.Tensor:
    """The textbook formula with a full-size ``where``: two live full-size temporaries."""
    dims = dims_of(dim, x.ndim)
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)  # kept dims broadcast back
    span = hi - lo
    return torch.where(span == 0, torch.zeros_like(x), (x - lo) / span)


def minmax_aminmax(x: torch.Tensor, dim=None) -> torch.Tensor:
    """``torch.aminmax`` for one dim or all (amin + amax otherwise), then :func:`_scale`."""
    dims = dims_of(dim, x.ndim)
    if len(dims) == 1 or len(dims) == x.ndim:  # aminmax takes one dim or None (all)
        lo, hi = torch.aminmax(x, dim=dims[0] if len(dims) == 1 else None, keepdim=True)  # one pass
    else:
        lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    return _scale(x, lo, hi - lo)


def minmax_fused(x: torch.Tensor, dim=None) -> torch.Tensor:
    """amin + amax, reciprocal on the reduced tensor, one output buffer (no full-size temporary)."""
    lo, span = minmax_stats(x, dim, keepdim=True)
    return _scale(x, lo, span)


def minmax_numpy(x: torch.Tensor, dim=None) -> torch.Tensor:
    """The reference: NumPy in float64 (``np.divide(x - min, span, where=span != 0)``), cast back.

    x: any shape and floating dtype, on any device; the result has x's shape, dtype and device.
    ``!= 0``, not ``> 0``: a NaN span (a NaN in the slice) divides to NaN, as the operators do.
    Raises as :func:`dims_of`.
    """
    import numpy as np

    a = x.detach().cpu().double().numpy()
    axis = dims_of(dim, a.ndim)
    lo = a.min(axis=axis, keepdims=True)
    span = a.max(axis=axis, keepdims=True) - lo
    out = np.divide(a - lo, span, out=np.zeros_like(a), where=span != 0)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
