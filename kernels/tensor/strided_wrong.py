"""Wrong StridedTensor subclasses: the mutants of m1.strided_tensor, each a plausible mistake in
the stride arithmetic of :class:`kernels.tensor.strided.StridedTensor` that its check must
reject. Each keeps its own class through views (``StridedTensor``'s views are plain
``StridedTensor``), so the bug survives a chain of indexing and permutes.
"""

from __future__ import annotations

from kernels.tensor.strided import StridedTensor

__all__ = ["IgnoresStepSign", "NumpyNoneStride", "ShapeOnlyTranspose", "TooManyIndicesIgnored"]


class _Keep(StridedTensor):
    """StridedTensor's views are plain StridedTensors; keep a wrong subclass through them."""

    def _wrap(self, v):
        return type(self)(v.storage, v.shape, v.strides, v.offset)

    def permute(self, *dims):
        return self._wrap(StridedTensor.permute(self, *dims))

    def __getitem__(self, index):
        return self._wrap(StridedTensor.__getitem__(self, index))


class ShapeOnlyTranspose(_Keep):
    """WRONG: swaps the sizes but keeps the strides: a reshape disguised as a transpose."""

    def transpose(self, d0, d1):
        shape = list(self.shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        return ShapeOnlyTranspose(self.storage, tuple(shape), self.strides, self.offset)


class IgnoresStepSign(_Keep):
    """WRONG: treats a:b:-c as a:b:c."""

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        fix = tuple(slice(i.start, i.stop, abs(i.step)) if isinstance(i, slice) and i.step else i for i in items)
        return super().__getitem__(fix)


class NumpyNoneStride(_Keep):
    """WRONG: gives a None dim stride 0 (NumPy's choice) instead of torch's size * stride."""

    def __getitem__(self, index):
        v = StridedTensor.__getitem__(self, index)
        if None in (index if isinstance(index, tuple) else (index,)):
            return NumpyNoneStride(
                v.storage, v.shape, tuple(0 if n == 1 else s for n, s in zip(v.shape, v.strides)), v.offset
            )
        return NumpyNoneStride(v.storage, v.shape, v.strides, v.offset)


class TooManyIndicesIgnored(StridedTensor):
    """WRONG: drops indices beyond ndim instead of raising."""

    def __getitem__(self, index):
        return super().__getitem__(index[: self.ndim] if isinstance(index, tuple) else index)
