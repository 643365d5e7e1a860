"""kernels/tensor/strided.py: StridedTensor views equal torch views of the same storage.

Random shapes, layouts (permuted, offset) and index expressions come from hypothesis
(derandomized, so CI runs the same examples each time). Reference for non-negative steps:
``torch.as_strided(storage, ...)[index]`` - shape, stride(), storage_offset() and values.
Negative steps, which torch rejects, are compared with NumPy views of the same storage
(strides converted from bytes to elements; strides of size-1 dims and the offset of
empty results are conventions, so they are compared only where they are meaningful) and,
for values, with ``torch.flip`` of the positive-step equivalent.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.tensor.strided import StridedTensor, contiguous_strides, view_strides

N = 700  # storage elements: enough for 5**4 elements at offset <= 3
STORAGE = torch.arange(N)
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)


def layout(x):
    if isinstance(x, torch.Tensor):
        return tuple(x.shape), tuple(x.stride()), x.storage_offset()
    return x.shape, x.strides, x.offset


@st.composite
def base_views(draw, max_ndim=4):
    """A torch view of STORAGE: contiguous layout of some shape, at an offset, permuted."""
    ndim = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    offset = draw(st.integers(0, 3))
    perm = draw(st.permutations(list(range(ndim))))
    t = torch.as_strided(STORAGE, shape, contiguous_strides(shape), offset).permute(perm)
    return t, StridedTensor(STORAGE, t.shape, t.stride(), t.storage_offset())


def slices(negative=False):
    bound = st.one_of(st.none(), st.integers(-7, 7))
    steps = st.one_of(st.none(), st.integers(1, 3))
    if negative:
        steps = st.one_of(steps, st.integers(-3, -1))
    return st.builds(slice, bound, bound, steps)


@st.composite
def index_exprs(draw, ndim, negative=False, ints=True):
    n = draw(st.integers(0, ndim))
    item = st.one_of(st.integers(-6, 5), slices(negative)) if ints else slices(negative)
    items = [draw(item) for _ in range(n)]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]  # a bare index, not a tuple
    return tuple(items)


def _torch_or_error(fn):
    try:
        return fn(), None
    except (IndexError, ValueError, RuntimeError) as e:
        return None, type(e)


def assert_same_view(mine, ref):
    assert layout(mine) == layout(ref)
    v = mine.to_torch()
    assert torch.equal(v, ref)
    # a true view: the torch tensor built from it uses the very same storage
    assert v.untyped_storage().data_ptr() == STORAGE.untyped_storage().data_ptr()


@SETTINGS
@given(data=st.data())
def test_indexing_equals_torch(data):
    t, s = data.draw(base_views())
    idx = data.draw(index_exprs(t.dim()))
    ref, err = _torch_or_error(lambda: t[idx])
    if err is not None:
        with pytest.raises(err):
            s[idx]
        return
    assert_same_view(s[idx], ref)


@SETTINGS
@given(data=st.data())
def test_chained_views_equal_torch(data):
    t, s = data.draw(base_views())
    idx = data.draw(index_exprs(t.dim(), ints=False))
    t, s = t[idx], s[idx]
    if t.dim() >= 2:
        d0 = data.draw(st.integers(-t.dim(), t.dim() - 1))
        d1 = data.draw(st.integers(-t.dim(), t.dim() - 1))
        t, s = t.transpose(d0, d1), s.transpose(d0, d1)
        perm = data.draw(st.permutations(list(range(t.dim()))))
        t, s = t.permute(*perm), s.permute(*perm)
    idx2 = data.draw(index_exprs(t.dim()))
    ref, err = _torch_or_error(lambda: t[idx2])
    if err is not None:
        with pytest.raises(err):
            s[idx2]
        return
    assert_same_view(s[idx2], ref)
    assert_same_view(s.T, t.permute(list(range(t.dim() - 1, -1, -1))))  # .T: all dims reversed


@st.composite
def new_shapes(draw, numel):
    """A shape with the given number of elements (1 to 4 dims), maybe with one -1."""
    k = draw(st.integers(1, 4))
    dims, rest = [], numel
    for _ in range(k - 1):
        divs = [d for d in range(1, rest + 1) if rest % d == 0] if rest else [0, 1, 2]
        d = draw(st.sampled_from(divs))
        dims.append(d)
        rest = rest // d if d else rest
    dims.append(rest)
    dims = draw(st.permutations(dims))
    if numel and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@SETTINGS
@given(data=st.data())
def test_view_and_reshape_equal_torch(data):
    t, s = data.draw(base_views(max_ndim=3))
    idx = data.draw(index_exprs(t.dim(), ints=False))
    t, s = t[idx], s[idx]
    shape = data.draw(new_shapes(t.numel()))
    ref, err = _torch_or_error(lambda: t.view(shape))
    if err is not None:
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            s.view(shape)
    else:
        assert_same_view(s.view(shape), ref)
    r, m = t.reshape(shape), s.reshape(shape)
    assert torch.equal(m.to_torch(), r)
    # torch.reshape returns a view exactly when view() works; so does ours
    torch_shares = r.untyped_storage().data_ptr() == STORAGE.untyped_storage().data_ptr()
    assert m.is_view_of(s) == torch_shares == (err is None)
    if not m.is_view_of(s):
        assert m.is_contiguous() and m.strides == contiguous_strides(m.shape)


@SETTINGS
@given(data=st.data())
def test_negative_steps_equal_numpy_views(data):
    t, s = data.draw(base_views(max_ndim=3))
    idx = data.draw(index_exprs(t.dim(), negative=True))
    base = np.arange(N)
    a = np.lib.stride_tricks.as_strided(base[s.offset :], s.shape, [x * base.itemsize for x in s.strides])
    try:
        ref = a[idx]
    except IndexError:
        with pytest.raises(IndexError):
            s[idx]
        return
    m = s[idx]
    if not isinstance(ref, np.ndarray):  # all-int index: NumPy returns a scalar copy
        assert m.shape == () and m.tolist() == ref.item()
        assert m.offset == ref.item()  # storage is arange, so a value is its own index
        return
    assert m.shape == ref.shape
    assert m.tolist() == ref.tolist()
    np_strides = tuple(x // base.itemsize for x in ref.strides)
    assert all(ms == ns for n, ms, ns in zip(m.shape, m.strides, np_strides) if n > 1)
    if ref.size:
        np_offset = (ref.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize
        assert m.offset == np_offset


@SETTINGS
@given(data=st.data())
def test_reversed_slices_equal_torch_flip(data):
    t, s = data.draw(base_views(max_ndim=3))
    if t.dim() == 0:
        return
    d = data.draw(st.integers(0, t.dim() - 1))
    k = data.draw(st.integers(1, 3))
    idx = (slice(None),) * d + (slice(None, None, -k),)
    expected = torch.flip(t, [d])[(slice(None),) * d + (slice(None, None, k),)]  # flip then step
    assert torch.equal(s[idx].to_torch(), expected)  # a copy: torch has no negative strides
    assert torch.equal(s.flip(d).to_torch(), torch.flip(t, [d]))
    assert s.flip(d).is_view_of(s)


def test_list_storage_behaves_like_tensor_storage():
    lst = list(range(60))
    s_list = StridedTensor(lst, (3, 4, 5))
    s_t = StridedTensor(torch.arange(60), (3, 4, 5))
    for idx in [(1,), (slice(None, None, 2), None, -1), (Ellipsis, slice(3, 0, -2)), (None, 2, slice(1, 3))]:
        a, b = s_list[idx], s_t[idx]
        assert layout(a) == layout(b)
        assert a.tolist() == b.tolist()
        assert torch.equal(a.to_torch(), b.to_torch())
    c = s_list.transpose(0, 2).contiguous()
    assert isinstance(c.storage, list) and c.is_contiguous()
    assert c.tolist() == torch.arange(60).reshape(3, 4, 5).transpose(0, 2).tolist()
    assert s_list[2, 3, 4].item() == 59


def test_from_torch_shares_memory():
    t = torch.arange(24.0).reshape(4, 6)[1:, ::2].t()
    s = StridedTensor.from_torch(t)
    assert layout(s) == layout(t)
    v = s.to_torch()
    v.mul_(-1)  # writes through to t's storage
    assert torch.equal(t, v)


def test_contiguous_copies_only_when_needed():
    s = StridedTensor(torch.arange(12), (3, 4))
    assert s.contiguous() is s
    c = s.T.contiguous()
    assert not c.is_view_of(s) and c.is_contiguous()
    assert torch.equal(c.to_torch(), torch.arange(12).reshape(3, 4).T)


# ---------------------------------------------------------------- planted bugs


def _bad_slice(s, start, stop, step):
    """Planted bug: a stepped slice that forgets to multiply the stride by the step."""
    n = len(range(*slice(start, stop, step).indices(s.shape[0])))
    return StridedTensor(s.storage, (n,) + s.shape[1:], s.strides, s.offset + start * s.strides[0])


def _bad_unsqueeze_stride(s):
    """Planted bug: None gets stride 0 (NumPy's choice), not torch's size*stride rule."""
    return StridedTensor(s.storage, (1,) + s.shape, (0,) + s.strides, s.offset)


def test_planted_layout_bugs_are_caught():
    t = torch.as_strided(STORAGE, (6, 4), (4, 1), 2)
    s = StridedTensor(STORAGE, (6, 4), (4, 1), 2)
    with pytest.raises(AssertionError):
        assert_same_view(_bad_slice(s, 1, 6, 2), t[1:6:2])
    with pytest.raises(AssertionError):
        assert_same_view(_bad_unsqueeze_stride(s), t[None])
    # and the planted view rule: ignoring the layout (always contiguous strides) is wrong
    tt = t.t()
    bad = StridedTensor(STORAGE, (24,), contiguous_strides((24,)), tt.storage_offset())
    with pytest.raises(AssertionError):
        assert torch.equal(bad.to_torch(), tt.reshape(24))
    assert view_strides(tt.shape, tt.stride(), (24,)) is None  # the real rule: no view


# ---------------------------------------------------------------- bad input


def test_out_of_range_index_names_index_and_dimension():
    s = StridedTensor(STORAGE, (2, 3, 4))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 1 with size 3"):
        s[0, 5]
    with pytest.raises(IndexError, match="index -3 is out of bounds for dimension 0 with size 2"):
        s[-3]
    with pytest.raises(IndexError, match="too many indices"):
        s[0, 0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        s[..., 0, ...]
    with pytest.raises(ValueError, match="step"):
        s[::0]
    with pytest.raises(TypeError, match="boolean|advanced"):
        s[True]
    with pytest.raises(TypeError):
        s[[0, 1]]
    with pytest.raises(IndexError, match="Dimension out of range"):
        s.transpose(0, 3)


def test_bad_construction_and_shapes():
    with pytest.raises(ValueError, match="outside a storage"):
        StridedTensor(torch.arange(10), (3, 4))
    with pytest.raises(ValueError, match="1-D"):
        StridedTensor(torch.zeros(2, 2), (4,))
    with pytest.raises(ValueError, match="offset"):
        StridedTensor(torch.arange(10), (2,), (1,), -1)
    with pytest.raises(ValueError, match="differ in length"):
        StridedTensor(torch.arange(10), (2, 5), (5,))
    s = StridedTensor(torch.arange(12), (3, 4))
    with pytest.raises(ValueError, match="invalid for input of size 12"):
        s.view(5, 2)
    with pytest.raises(ValueError, match="only one dimension"):
        s.reshape(-1, -1)
    with pytest.raises(ValueError, match="permutation"):
        s.permute(0, 0)
    with pytest.raises(ValueError, match="item"):
        s.item()
    assert math.prod(s.T.shape) == 12
