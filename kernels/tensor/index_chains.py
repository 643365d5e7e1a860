"""Random index chains on a strided tensor class, compared with torch and NumPy views.

A *chain* permutes a base tensor (over a storage with a non-zero base offset), indexes it with
a random expression (:func:`random_index`: ints, negative ones too, slices with random
start/stop/step, a third stepping backwards, None and Ellipsis) and sometimes transposes two
dims. :func:`compare_chain` runs one chain on a class with the ``StridedTensor`` interface
(``kernels/tensor/strided.py``) and says where it differs from

* torch (positive steps only; torch refuses negative ones): shape, strides, storage offset,
  shared storage and ``view(-1)`` (raising exactly where torch raises);
* NumPy, every chain: shape, strides and offset in elements (the stride of a size-1 dim
  addresses nothing and there torch's convention, which the class follows, differs from
  NumPy's 0, so those are not compared);
* torch's values taken dim by dim (:func:`torch_values`), every chain.
"""

from __future__ import annotations

import random

import numpy as np
import torch

#: what :func:`compare_chain` compares, in the order a check reports it
CATEGORIES = (
    "raises nothing on valid chains",
    "layout vs torch",
    "values vs torch",
    "layout vs NumPy",
    "view(-1) vs torch",
    "shares the storage",
)


def random_index(rng: random.Random, shape: tuple[int, ...], *, negative: bool = True) -> tuple:
    """A random index expression for ``shape``: per dim an int, a slice or nothing, with
    Nones sprinkled in and sometimes an Ellipsis standing for some trailing dims."""
    items: list = []
    ndim = len(shape)
    n_used = rng.randint(0, ndim)
    for d in range(n_used):
        if rng.random() < 0.15:
            items.append(None)
        n = shape[d]
        r = rng.random()
        if r < 0.3 and n > 0:
            items.append(rng.randint(-n, n - 1))
        elif r < 0.4:
            items.append(slice(None))
        else:
            step = rng.choice([1, 1, 2, 3]) * (-1 if negative and rng.random() < 1 / 3 else 1)
            pick = lambda: rng.choice([None, rng.randint(-n - 2, n + 2)])  # out of range clamps
            items.append(slice(pick(), pick(), step))
    if n_used < ndim and rng.random() < 0.3:
        items.append(Ellipsis)
        if rng.random() < 0.5:
            items.append(None)
    return tuple(items)


def _has_negative_step(index: tuple) -> bool:
    return any(isinstance(it, slice) and it.step is not None and it.step < 0 for it in index)


def torch_values(t: torch.Tensor, index: tuple) -> torch.Tensor:
    """Values of ``t[index]`` built dim by dim with torch ops; negative-step slices become
    ``index_select`` of their indices (a copy), everything else stays a view."""
    items = list(index)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        consumed = sum(isinstance(it, (int, slice)) for it in items)
        items[k : k + 1] = [slice(None)] * (t.dim() - consumed)
    d = 0
    for it in items:
        if it is None:
            t = t.unsqueeze(d)
            d += 1
        elif isinstance(it, int):
            t = t.select(d, it)
        else:
            idx = list(range(*it.indices(t.shape[d])))
            t = t.index_select(d, torch.tensor(idx, dtype=torch.long, device=t.device))
            d += 1
    return t


def _numpy_layout(a: np.ndarray, base: np.ndarray) -> tuple:
    """(shape, strides in elements, offset in elements) of NumPy view ``a`` of ``base``."""
    item = a.itemsize
    offset = (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return tuple(a.shape), tuple(s // item for s in a.strides), offset


def _addressing(shape, strides, offset) -> tuple:
    """The part of a layout that decides which element is read: strides of size-1 dims are
    never used (torch gives an unsqueezed dim size*stride of the next dim, NumPy 0), and an
    empty view reads nothing at all."""
    if 0 in shape:
        return tuple(shape), None, None
    return tuple(shape), tuple(s if n > 1 else None for n, s in zip(shape, strides)), offset


def compare_chain(tensor_cls, rng: random.Random, dtype: torch.dtype, device) -> tuple[dict[str, str], bool]:
    """One random chain on ``tensor_cls``: ({category: what differs}, whether it steps backwards).

    An exception raised by ``tensor_cls`` on the valid chain is a finding, not a crash.
    """
    found: dict[str, str] = {}
    shape = tuple(rng.randint(1, 5) for _ in range(rng.randint(1, 4)))
    off = rng.randint(0, 3)
    n = int(np.prod(shape))
    storage = torch.arange(off + n, dtype=dtype, device=device)
    np_storage = np.arange(off + n, dtype=np.float64)
    perm = list(range(len(shape)))
    rng.shuffle(perm)
    t = storage[off:].view(shape).permute(perm)  # torch view
    a = np_storage[off:].reshape(shape).transpose(perm)  # NumPy view
    index = random_index(rng, tuple(t.shape))
    # a trailing ... makes NumPy return a 0-d view instead of a scalar for all-int indices
    a_v = a[index if Ellipsis in index else index + (Ellipsis,)]
    swap = rng.sample(range(a_v.ndim), 2) if a_v.ndim >= 2 and rng.random() < 0.5 else None
    where = f"shape {shape}, offset {off}, permute {perm}, index {index}, transpose {swap}"
    try:
        st = tensor_cls(storage, shape, None, off).permute(*perm)
        st_v = st[index]
        if swap:
            st_v = st_v.transpose(*swap)
    except Exception as e:  # the class under test failed on a valid chain: a finding, not a crash
        found["raises nothing on valid chains"] = f"{where}: {type(e).__name__}: {e}"
        return found, False
    if swap:
        a_v = a_v.swapaxes(*swap)
    layout = (tuple(st_v.shape), tuple(st_v.strides), st_v.offset)
    if _addressing(*layout) != _addressing(*_numpy_layout(a_v, np_storage)):
        found["layout vs NumPy"] = f"{where}: own {layout}, NumPy {_numpy_layout(a_v, np_storage)}"
    vals = torch_values(t, index)
    if swap:
        vals = vals.transpose(*swap)
    got = st_v.to_torch()
    if got.shape != vals.shape or not torch.equal(got, vals):
        found["values vs torch"] = f"{where}: own {got.tolist()}, torch {vals.tolist()}"
    if _has_negative_step(index):
        return found, True
    tv = t[index]
    if swap:
        tv = tv.transpose(*swap)
    if layout != (tuple(tv.shape), tuple(tv.stride()), tv.storage_offset()):
        found["layout vs torch"] = f"{where}: own {layout}, torch {(tuple(tv.shape), tv.stride(), tv.storage_offset())}"
    if not st_v.is_view_of(st) or (
        got.numel() and got.untyped_storage().data_ptr() != storage.untyped_storage().data_ptr()
    ):
        found["shares the storage"] = where
    try:
        want_v = tv.view(-1).stride()
    except RuntimeError:
        want_v = "RuntimeError"
    try:
        got_v = st_v.view(-1).strides
    except RuntimeError:
        got_v = "RuntimeError"
    if got_v != want_v:
        found["view(-1) vs torch"] = f"{where}: own {got_v}, torch {want_v}"
    return found, False


def run_chains(tensor_cls, seed: int, n: int, dtype: torch.dtype, device) -> tuple[dict[str, list[str]], int]:
    """``n`` random chains (:func:`compare_chain`) from ``random.Random(seed)``:
    ({category: what differed, one entry per failing chain} for every category of
    :data:`CATEGORIES`, how many chains stepped backwards)."""
    rng = random.Random(seed)
    mismatch: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    n_neg = 0
    for _ in range(n):
        found, negative = compare_chain(tensor_cls, rng, dtype, device)
        n_neg += negative
        for what, why in found.items():
            mismatch[what].append(why)
    return mismatch, n_neg


def torch_index_error(t: torch.Tensor, index: tuple) -> str:
    """The message of the IndexError torch raises for ``t[index]`` (the text an own tensor class
    must reproduce word for word).

    Raises:
        AssertionError: torch accepts ``index``.
    """
    try:
        t[index]
    except IndexError as e:
        return str(e)
    raise AssertionError(f"torch accepted {index}")
