"""A tensor class that is nothing but (flat storage, shape, strides, offset).

Element ``[i0, ..., ik]`` lives at ``storage[offset + i0*s0 + ... + ik*sk]``. Every view
operation below (indexing, transpose, permute, view, flip) only computes a new
(shape, strides, offset) over the *same* storage object; only ``contiguous()`` and a
``reshape`` that cannot be a view copy. This is the layout model of torch.Tensor
(``tensor.stride()``, ``tensor.storage_offset()``, ``torch.as_strided``) and of NumPy.

Storage: a 1-D torch tensor or a Python list. Strides and offset count *elements*.

Indexing (``__getitem__``) takes a tuple of int, slice, None and at most one Ellipsis,
with torch's rules for the result's strides and offset:
- int i on dim d: offset += i * s_d, dim dropped; out of range -> IndexError naming the
  index, the dimension and its size (torch's wording);
- slice a:b:c with c > 0: offset += start * s_d, stride s_d * c, length len(range(...))
  (torch clamps start/stop exactly as ``slice.indices``);
- None: a new dim of size 1 whose stride is size*stride of the dim that follows, or 1 at
  the end (at::unsqueeze's rule);
- slice with c < 0 (torch refuses these: "step must be greater than zero"): stride
  s_d * c, i.e. a *negative* stride, as NumPy does; an empty negative-step slice follows
  NumPy (offset unchanged, stride s_d). Values equal ``torch.flip`` of the positive-step
  equivalent; the tests compare layout with NumPy views (strides in elements).

``view(shape)`` uses torch's stride computation (ATen ``computeStride``): a view exists iff
every group of new dims maps onto a chunk of old dims that is contiguous in memory;
otherwise it raises RuntimeError like ``torch.Tensor.view``. ``reshape`` returns that view
when it exists and otherwise a contiguous copy (``torch.Tensor.reshape``'s contract);
``is_view_of`` says which happened.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["StridedTensor", "contiguous_strides", "view_strides"]


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides; a size-0 or size-1 dim counts as 1 (c10::contiguous_strides)."""
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * max(shape[d + 1], 1)
    return tuple(strides)


def view_strides(
    old_shape: Sequence[int], old_strides: Sequence[int], new_shape: Sequence[int]
) -> tuple[int, ...] | None:
    """Strides that let ``new_shape`` view memory laid out as (old_shape, old_strides),
    or None when no view exists. A port of ATen's computeStride (TensorUtils.cpp).

    Walk old dims from the last; a *chunk* ends where old dim d-1 is not laid out right
    after dim d (stride[d-1] != numel(chunk) * stride of the chunk's last dim). Each chunk
    must be covered exactly by consecutive new dims, which get strides inside the chunk.
    """
    if len(old_shape) == 0:
        return (1,) * len(new_shape)
    numel = math.prod(old_shape)
    if numel == 0 and tuple(old_shape) == tuple(new_shape):
        return tuple(old_strides)
    new_strides = [0] * len(new_shape)
    if numel == 0:  # any strides work; use resize-like ones, as ATen
        for d in range(len(new_shape) - 1, -1, -1):
            new_strides[d] = 1 if d == len(new_shape) - 1 else max(new_shape[d + 1], 1) * new_strides[d + 1]
        return tuple(new_strides)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        chunk_ends = tensor_d == 0 or (
            old_shape[tensor_d - 1] != 1 and old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride
        )
        if chunk_ends:
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def _as_shape(args: tuple) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    for s in args:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"shape entries must be ints, got {s!r}")
    return tuple(args)


class StridedTensor:
    """(storage, shape, strides, offset) with torch's view semantics.

    storage: 1-D torch tensor or Python list (shared, never copied by views).
    shape: tuple of non-negative ints. strides: tuple of ints (elements; negative allowed),
    default row-major. offset: storage index of element [0, ..., 0].
    Raises ValueError if a reachable element would fall outside the storage.
    """

    __slots__ = ("storage", "shape", "strides", "offset")

    def __init__(
        self, storage: torch.Tensor | list, shape: Sequence[int], strides: Sequence[int] | None = None, offset: int = 0
    ):
        if isinstance(storage, torch.Tensor):
            if storage.dim() != 1:
                raise ValueError(f"storage must be 1-D, got shape {tuple(storage.shape)}")
        elif not isinstance(storage, list):
            raise TypeError(f"storage must be a 1-D torch.Tensor or a list, got {type(storage).__name__}")
        shape = _as_shape((shape,))
        if any(s < 0 for s in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        strides = contiguous_strides(shape) if strides is None else _as_shape((strides,))
        if len(strides) != len(shape):
            raise ValueError(f"shape {shape} and strides {strides} differ in length")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        if math.prod(shape) > 0:
            lo = offset + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
            hi = offset + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
            if lo < 0 or hi >= len(storage):
                raise ValueError(
                    f"shape {shape}, strides {strides}, offset {offset} reach storage indices "
                    f"[{lo}, {hi}] outside a storage of {len(storage)} elements"
                )
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = int(offset)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_torch(cls, t: torch.Tensor) -> StridedTensor:
        """Wrap a torch tensor's layout over a 1-D view of its whole storage (shared memory)."""
        n = t.untyped_storage().nbytes() // t.element_size()
        flat = torch.as_strided(t, (n,), (1,), 0)  # (n,) every element of the storage
        return cls(flat, tuple(t.shape), tuple(t.stride()), t.storage_offset())

    # ------------------------------------------------------------------ torch-like accessors
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def stride(self, dim: int | None = None):
        return self.strides if dim is None else self.strides[self._dim(dim)]

    def storage_offset(self) -> int:
        return self.offset

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        kind = "tensor" if isinstance(self.storage, torch.Tensor) else "list"
        return (
            f"StridedTensor(shape={self.shape}, strides={self.strides}, "
            f"offset={self.offset}, storage={kind}[{len(self.storage)}])"
        )

    def _dim(self, d: int) -> int:
        n = max(self.ndim, 1)
        if isinstance(d, bool) or not isinstance(d, int) or not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        return d % n

    def is_contiguous(self) -> bool:
        """torch's rule: sizes-1 dims are ignored; an empty tensor is contiguous."""
        if self.numel() == 0:
            return True
        expected = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1:
                if s != expected:
                    return False
                expected *= n
        return True

    def is_view_of(self, other: StridedTensor) -> bool:
        """True if both use the very same storage object (a view, not a copy)."""
        return self.storage is other.storage

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index: Any) -> StridedTensor:
        items = index if isinstance(index, tuple) else (index,)
        for it in items:
            if isinstance(it, bool) or not (isinstance(it, (int, slice)) or it is None or it is Ellipsis):
                raise TypeError(
                    f"StridedTensor indices must be int, slice, None or Ellipsis, "
                    f"got {type(it).__name__} (no advanced/boolean indexing)"
                )
        if sum(it is Ellipsis for it in items) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        consumed = sum(isinstance(it, (int, slice)) for it in items)
        if consumed > self.ndim:
            raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
        if Ellipsis in items:
            k = items.index(Ellipsis)
            items = items[:k] + (slice(None),) * (self.ndim - consumed) + items[k + 1 :]
        shape, strides, offset = [], [], self.offset
        d = 0  # next source dim
        for it in items:
            if it is None:
                # at::unsqueeze: the new dim's stride is size*stride of the dim it precedes
                strides.append(self.shape[d] * self.strides[d] if d < self.ndim else 1)
                shape.append(1)
                continue
            size, st = self.shape[d], self.strides[d]
            if isinstance(it, int):
                if not -size <= it < size:
                    raise IndexError(f"index {it} is out of bounds for dimension {d} with size {size}")
                offset += (it % size) * st
            else:
                start, stop, step = it.indices(size)  # ValueError for step 0, like Python
                length = len(range(start, stop, step))
                if step < 0 and length == 0:
                    start, step = 0, 1  # NumPy's convention for an empty reversed slice
                offset += start * st
                shape.append(length)
                strides.append(st * step)
            d += 1
        shape += self.shape[d:]
        strides += self.strides[d:]
        return StridedTensor(self.storage, tuple(shape), tuple(strides), offset)

    # ------------------------------------------------------------------ views
    def transpose(self, d0: int, d1: int) -> StridedTensor:
        """Swap two dims (a view)."""
        if self.ndim == 0:
            return self
        d0, d1 = self._dim(d0), self._dim(d1)
        perm = list(range(self.ndim))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self.permute(*perm)

    @property
    def T(self) -> StridedTensor:
        """All dims reversed (torch's .T; for 2-D the matrix transpose)."""
        return self.permute(*range(self.ndim - 1, -1, -1))

    def permute(self, *dims) -> StridedTensor:
        """Reorder dims (a view). dims: a permutation of range(ndim), negatives allowed."""
        dims = _as_shape(dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims for a tensor with {self.ndim} dims")
        dims = tuple(self._dim(d) for d in dims)
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of range({self.ndim})")
        return StridedTensor(
            self.storage, tuple(self.shape[d] for d in dims), tuple(self.strides[d] for d in dims), self.offset
        )

    def flip(self, *dims) -> StridedTensor:
        """Reverse the order along dims as a *view* with negative strides (torch.flip
        copies instead, since torch strides cannot be negative)."""
        st, offset = list(self.strides), self.offset
        for d in {self._dim(d) for d in _as_shape(dims)}:
            if self.shape[d] > 0:
                offset += (self.shape[d] - 1) * st[d]
            st[d] = -st[d]
        return StridedTensor(self.storage, self.shape, tuple(st), offset)

    def _infer_shape(self, shape: tuple) -> tuple:
        if sum(s == -1 for s in shape) > 1:
            raise ValueError("only one dimension can be inferred (-1)")
        if any(s < -1 for s in shape):
            raise ValueError(f"invalid shape dimension in {shape}")
        known = math.prod(s for s in shape if s != -1)
        if -1 in shape:
            if known == 0 or self.numel() % known:
                raise ValueError(f"shape {list(shape)} is invalid for input of size {self.numel()}")
            shape = tuple(self.numel() // known if s == -1 else s for s in shape)
        if math.prod(shape) != self.numel():
            raise ValueError(f"shape {list(shape)} is invalid for input of size {self.numel()}")
        return shape

    def view(self, *shape) -> StridedTensor:
        """A view with a new shape (-1 inferred). Raises RuntimeError where
        torch.Tensor.view does (no strides exist), ValueError for a wrong element count."""
        shape = self._infer_shape(_as_shape(shape))
        st = view_strides(self.shape, self.strides, shape)
        if st is None:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            )
        return StridedTensor(self.storage, shape, st, self.offset)

    def reshape(self, *shape) -> StridedTensor:
        """``view`` when possible, else a contiguous copy (new storage), as torch.reshape."""
        shape = self._infer_shape(_as_shape(shape))
        st = view_strides(self.shape, self.strides, shape)
        if st is not None:
            return StridedTensor(self.storage, shape, st, self.offset)
        return self.contiguous().view(shape)

    # ------------------------------------------------------------------ materialising
    def flat_indices(self) -> list[int]:
        """Storage index of every element, in row-major order of this view."""
        ranges = [range(n) for n in self.shape]
        return [self.offset + sum(i * s for i, s in zip(idx, self.strides)) for idx in itertools.product(*ranges)]

    def _flat_indices_tensor(self) -> torch.Tensor:
        idx = torch.full((), self.offset, dtype=torch.long)
        for n, s in zip(self.shape, self.strides):
            ar = torch.arange(n, dtype=torch.long) * s
            idx = idx.unsqueeze(-1) + ar  # (n0, ..., nd) by broadcasting one dim at a time
        return idx.reshape(-1)

    def contiguous(self) -> StridedTensor:
        """self if already contiguous, else a row-major copy into a new storage of the same
        kind (torch tensor -> gathered tensor, list -> list)."""
        if self.is_contiguous():  # implies no negative stride on a dim of size > 1
            return self
        if isinstance(self.storage, torch.Tensor):
            data = self.storage[self._flat_indices_tensor().to(self.storage.device)]
        else:
            data = [self.storage[i] for i in self.flat_indices()]
        return StridedTensor(data, self.shape)

    def to_torch(self) -> torch.Tensor:
        """A torch tensor with these values. With a tensor storage and non-negative strides
        it is a true view (``torch.as_strided``, shared memory); with negative strides or a
        list storage it is a copy (torch cannot express negative strides)."""
        if isinstance(self.storage, torch.Tensor):
            if all(s >= 0 for s in self.strides):
                return torch.as_strided(self.storage, self.shape, self.strides, self.offset)
            return self.storage[self._flat_indices_tensor().to(self.storage.device)].reshape(self.shape)
        return torch.tensor([self.storage[i] for i in self.flat_indices()]).reshape(self.shape)

    def tolist(self) -> Any:
        """Nested Python lists (a scalar for a 0-d tensor)."""
        src = self.storage.tolist() if isinstance(self.storage, torch.Tensor) else self.storage
        vals = [src[i] for i in self.flat_indices()]
        if not self.shape:
            return vals[0]

        def build(flat: list, shape: tuple) -> list:
            if len(shape) == 1:
                return list(flat)
            step = math.prod(shape[1:])
            return [build(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]

        return build(vals, self.shape)

    def item(self) -> Any:
        """The single element's value; ValueError unless numel() == 1."""
        if self.numel() != 1:
            raise ValueError(f"item() needs exactly one element, this view has {self.numel()}")
        v = self.storage[self.flat_indices()[0]]
        return v.item() if isinstance(v, torch.Tensor) else v
