"""When a reshape can be a view (1.07): the rule of ATen's ``computeStride`` (aten/src/ATen/TensorUtils.cpp).

Legend: ``shape``/``stride`` are tuples of ints in elements (not bytes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def infer_shape(shape: Sequence[int], numel: int) -> tuple[int, ...]:
    """``shape`` with at most one -1 replaced so that it holds ``numel`` elements.

    Raises:
        ValueError: two -1, a size below -1, or a shape that cannot hold ``numel`` elements.
    """
    shape = tuple(int(n) for n in shape)
    if sum(n == -1 for n in shape) > 1:
        raise ValueError(f"shape {shape}: only one dimension can be -1 (inferred)")
    if any(n < -1 for n in shape):
        raise ValueError(f"shape {shape}: sizes must be >= 0 or -1")
    known = math.prod(n for n in shape if n != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise ValueError(f"shape {shape} is invalid for input of size {numel}: cannot infer the -1")
        shape = tuple(numel // known if n == -1 else n for n in shape)
    elif known != numel:
        raise ValueError(f"shape {shape} is invalid for input of size {numel}")
    return shape


def view_strides(shape: Sequence[int], stride: Sequence[int], new_shape: Sequence[int]) -> tuple[int, ...] | None:
    """Strides that view a (``shape``, ``stride``) tensor as ``new_shape``, or None if none exist.

    The old dimensions are cut into chunks that are contiguous among themselves
    (stride[d-1] == size[d] * stride[d]); a chunk can be re-split into any new sizes with
    the same element count, but new dimensions may not straddle two chunks. Follows
    ATen's ``computeStride_impl`` (aten/src/ATen/TensorUtils.cpp), so the strides equal
    those ``Tensor.view`` picks. ``new_shape`` must hold as many elements as ``shape``.
    """
    shape, stride, new_shape = tuple(shape), tuple(stride), tuple(new_shape)
    if not shape:  # a 0-d tensor: any shape of ones, stride 1
        return (1,) * len(new_shape)
    numel = math.prod(shape)
    if numel == 0:
        if shape == new_shape:
            return stride
        out = [1] * len(new_shape)  # no element is ever read: contiguous strides will do
        for d in range(len(new_shape) - 2, -1, -1):
            out[d] = max(new_shape[d + 1], 1) * out[d + 1]
        return tuple(out)
    new_stride = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = stride[-1]  # stride of the innermost dimension of the current chunk
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        # end of a chunk: the first dim, or the dim before is not contiguous with this one
        if d == 0 or (shape[d - 1] != 1 and stride[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_stride[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None  # a new dimension would straddle two chunks
            if d > 0:
                chunk_base, tensor_numel, view_numel = stride[d - 1], 1, 1
    return tuple(new_stride) if view_d == -1 else None
