"""NumPy-style indexing of torch tensors by hand: parse an index string, plan it, execute it two ways.

Rules follow the NumPy manual ("Indexing on ndarrays", basic and advanced indexing): ints
count from the end when negative, slices take any step (negative too, which torch's own
``x[::-1]`` rejects); once an array is present ints are advanced indices too, and all
advanced indices broadcast to one result dim that stays in place when they are adjacent
and goes first when a slice separates them.
"""

from __future__ import annotations

import math

import torch


def parse(spec: str, shape, g: torch.Generator, device) -> tuple:
    """The index tuple of ``spec``; masks are drawn from ``g`` (at least one True each)."""
    parts = _split(spec)
    if "..." in parts:  # expand to the missing full slices
        i = parts.index("...")
        parts[i : i + 1] = [":"] * (len(shape) - len(parts) + 1)
    out = []
    for d, p in enumerate(parts):
        if p == "mask3d":
            m = torch.rand(shape, generator=g) < 0.4
        elif p == "mask":
            m = torch.rand(shape[d], generator=g) < 0.5
        elif p.startswith("["):
            out.append(torch.tensor([int(v) for v in p[1:-1].split(",")], device=device))
            continue
        elif ":" in p:
            out.append(slice(*[int(v) if v.strip() else None for v in p.split(":")]))
            continue
        else:
            out.append(int(p))
            continue
        m.view(-1)[0] = True  # (numel,) view: at least one element selected
        out.append(m.to(device))
    return tuple(out)


def _split(spec: str) -> list[str]:
    """Split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + [cur.strip()]


def plan(index: tuple, shape) -> tuple[list, list[int], list[torch.Tensor], bool, tuple[int, ...]]:
    """Resolve ``index`` for ``shape`` into per-dim ranges and one advanced group.

    Returns (basic, adv_dims, adv_index, adjacent): ``basic[d]`` is ``range(start, stop,
    step)`` for a sliced dim, an int for a dropped dim (no arrays present), or None for
    a dim in the advanced group; ``adv_index`` are the group's int64 index vectors, all
    of one length k; ``adjacent`` says whether the k dim stays in place (else it goes first);
    ``adv_shape`` is the broadcast shape of the index arrays (NumPy: the result holds these
    dims where the group's one k = prod(adv_shape) dim is placed).

    Raises:
        IndexError: too many indices, an index out of bounds, a mask of the wrong length.
        ValueError: a slice step of zero.
    """
    if (
        len(index) == 1
        and isinstance(index[0], torch.Tensor)
        and index[0].dtype == torch.bool
        and index[0].ndim == len(shape)
    ):  # a whole-tensor mask: one array per dim
        if tuple(index[0].shape) != tuple(shape):
            raise IndexError(
                f"boolean mask of shape {tuple(index[0].shape)} does not match tensor shape {tuple(shape)}"
            )
        nz = index[0].nonzero()  # (k, ndim)
        return [None] * len(shape), list(range(len(shape))), list(nz.unbind(1)), True, (nz.shape[0],)
    if len(index) > len(shape):
        raise IndexError(f"too many indices: {len(index)} for a {len(shape)}-d tensor")
    index = tuple(index) + (slice(None),) * (len(shape) - len(index))
    has_array = any(isinstance(i, torch.Tensor) for i in index)
    basic, adv_dims, adv = [], [], []
    for d, (i, n) in enumerate(zip(index, shape)):
        if isinstance(i, slice):
            if i.step == 0:
                raise ValueError("slice step cannot be zero")
            basic.append(range(*i.indices(n)))
            continue
        if isinstance(i, torch.Tensor):
            if i.dtype == torch.bool:
                if i.shape != (n,):
                    raise IndexError(f"boolean index of length {i.numel()} does not match dim {d} of size {n}")
                i = i.nonzero().squeeze(1)
            if bool(((i < -n) | (i >= n)).any()):
                raise IndexError(f"index {i.tolist()} out of bounds for dim {d} with size {n}")
            i = i % n if n else i  # negative counts from the end
        elif not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for dim {d} with size {n}")
        else:
            i = i % n
        if has_array:  # NumPy: next to an array, an int is an advanced index too
            basic.append(None)
            adv_dims.append(d)
            adv.append(i)
        else:
            basic.append(i)
    adv_shape: tuple[int, ...] = ()
    if adv:
        dev = next(a.device for a in adv if isinstance(a, torch.Tensor))
        # index arrays of any rank and ints broadcast together (NumPy), then flatten to (k,)
        full = torch.broadcast_tensors(*[torch.as_tensor(a, dtype=torch.long, device=dev) for a in adv])
        adv_shape = tuple(full[0].shape)
        adv = [a.reshape(-1) for a in full]  # each (k,)
    adjacent = adv_dims == list(range(adv_dims[0], adv_dims[0] + len(adv_dims))) if adv_dims else True
    return basic, adv_dims, adv, adjacent, adv_shape


def index_slice(x: torch.Tensor, index: tuple) -> torch.Tensor:
    """Views for slices with a positive step; flip for a negative one; index_select for arrays."""
    basic, adv_dims, adv, adjacent, adv_shape = plan(index, x.shape)
    y, dims = x, []  # dims: positions in y of the original dims that are kept
    for d, r in enumerate(basic):
        pos = len(dims)
        if isinstance(r, int):
            y = y.select(pos, r)  # drops the dim
            continue
        dims.append(d)
        if r is None:
            continue
        lead = (slice(None),) * pos
        if r.step > 0 or len(r) == 0:  # a view; start/stop are already in 0..n
            y = y[lead + (slice(r.start, r.stop, r.step),)] if len(r) else y.narrow(pos, 0, 0)
        else:  # the same elements in increasing order, then reversed: flip copies
            y = y[lead + (slice(r[-1], r.start + 1, -r.step),)].flip(pos)
    if not adv:
        return y
    group = [dims.index(d) for d in adv_dims]
    y = y.movedim(group, list(range(len(group))))  # (g0, g1, ..., rest)
    sizes = y.shape[: len(group)]
    lin = sum(a * math.prod(sizes[j + 1 :]) for j, a in enumerate(adv))  # row-major position in the group
    y = y.flatten(0, len(group) - 1).index_select(0, lin)  # (k, rest...)
    y = y.reshape(adv_shape + tuple(y.shape[1:]))  # (*adv_shape, rest...)
    if not adjacent:
        return y
    nb = len(adv_shape)  # the adv_shape block goes where the group was
    return y.movedim(list(range(nb)), list(range(group[0], group[0] + nb)))


def index_gather(x: torch.Tensor, index: tuple) -> torch.Tensor:
    """One ``torch.take`` from the flat storage at offsets built from the strides."""
    basic, adv_dims, adv, adjacent, adv_shape = plan(index, x.shape)
    base = x.storage_offset() + sum(r * x.stride(d) for d, r in enumerate(basic) if isinstance(r, int))
    vecs = []  # one 1-D offset vector per output dim, in output order
    for d, r in enumerate(basic):
        if isinstance(r, range):
            vecs.append(torch.tensor(r, dtype=torch.long, device=x.device) * x.stride(d))
        elif r is None and d == adv_dims[0]:  # the advanced group's one output dim
            vecs.append(sum(a * x.stride(ad) for ad, a in zip(adv_dims, adv)))
    i = sum(1 for d, r in enumerate(basic) if isinstance(r, range) and adv_dims and d < adv_dims[0])
    if adv and not adjacent:  # the group's dim goes first
        vecs.insert(0, vecs.pop(i))
        i = 0
    offsets = torch.full((), base, dtype=torch.long, device=x.device)
    for j, v in enumerate(vecs):  # outer sum: dim j of the output varies along axis j
        offsets = offsets.unsqueeze(-1) + v.view(*([1] * j), -1)  # (n0, ..., nj)
    storage = x.as_strided((x.untyped_storage().nbytes() // x.element_size(),), (1,), 0)  # flat storage, 1-D
    out = torch.take(storage, offsets)
    if adv:  # the group's one k dim (at position i) becomes the index arrays' broadcast shape
        out = out.reshape(tuple(out.shape[:i]) + adv_shape + tuple(out.shape[i + 1 :]))
    return out
