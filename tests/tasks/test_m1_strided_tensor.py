"""m1.strided_tensor: own views equal torch/NumPy views on random expressions; planted layout bugs are caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.tensor.strided import StridedTensor

Task = REGISTRY.get("m1.strided_tensor")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["random_chains_with_negative_steps"] > 60
    assert {
        "random chains: layout vs torch",
        "random chains: layout vs NumPy",
        "out-of-range message equals torch's",
    } <= set(rec.checks)


class _Keep(StridedTensor):
    """StridedTensor's views are plain StridedTensors; keep the planted subclass through them."""

    def _wrap(self, v):
        return type(self)(v.storage, v.shape, v.strides, v.offset)

    def permute(self, *dims):
        return self._wrap(StridedTensor.permute(self, *dims))

    def __getitem__(self, index):
        return self._wrap(StridedTensor.__getitem__(self, index))


class ShapeOnlyTranspose(_Keep):
    """Swaps the sizes but keeps the strides: a reshape disguised as a transpose."""

    def transpose(self, d0, d1):
        shape = list(self.shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        return ShapeOnlyTranspose(self.storage, tuple(shape), self.strides, self.offset)


class IgnoresStepSign(_Keep):
    """Treats a:b:-c as a:b:c."""

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        fixed = tuple(
            slice(it.start, it.stop, abs(it.step)) if isinstance(it, slice) and it.step else it for it in items
        )
        return super().__getitem__(fixed)


class NumpyNoneStride(StridedTensor):
    """Gives a None dim stride 0 (NumPy's choice) instead of torch's size * stride."""

    def __getitem__(self, index):
        v = super().__getitem__(index)
        items = index if isinstance(index, tuple) else (index,)
        if None in items:
            strides = tuple(0 if n == 1 else s for n, s in zip(v.shape, v.strides))
            v = StridedTensor(v.storage, v.shape, strides, v.offset)
        return NumpyNoneStride(v.storage, v.shape, v.strides, v.offset)

    def permute(self, *dims):
        v = super().permute(*dims)
        return NumpyNoneStride(v.storage, v.shape, v.strides, v.offset)


class TooManyIndicesAreIgnored(StridedTensor):
    def __getitem__(self, index):
        if isinstance(index, tuple) and len(index) > self.ndim:
            index = index[: self.ndim]
        return super().__getitem__(index)


def test_transpose_without_strides_is_caught():
    class Wrong(Task):
        tensor_cls = ShapeOnlyTranspose

    expect_check_fails(Wrong, match="random chains")


def test_negative_steps_walking_forwards_are_caught():
    class Wrong(Task):
        tensor_cls = IgnoresStepSign

    expect_check_fails(Wrong, match="random chains")


def test_numpy_stride_for_new_dims_is_caught_by_the_torch_comparison():
    class Wrong(Task):
        tensor_cls = NumpyNoneStride

    expect_check_fails(Wrong, match="layout vs torch")


def test_too_many_indices_accepted_is_caught():
    class Wrong(Task):
        tensor_cls = TooManyIndicesAreIgnored

    expect_check_fails(Wrong, match="too many indices")
