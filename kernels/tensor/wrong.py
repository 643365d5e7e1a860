"""Wrong tensor operators: the mutants of the fundamentals tasks (each one a plausible mistake).

fundamentals.one_hot, minmax_normalize, cosine_similarity, slicing_3d, broadcasting and
elementwise_manual swap these in for the right operators of this package; each check must
catch each one (``tests/tasks/test_mutants.py``). Arguments and shapes as the right operator's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kernels.tensor.cosine import broadcast_pairs, cosine_fused, cosine_pairwise_matmul
from kernels.tensor.indexing import index_gather, index_slice
from kernels.tensor.iterator import VECTOR_OPS, broadcast_shape, elementwise_loop


# -- fundamentals.one_hot: kernels.tensor.one_hot without validation ------------------------------
def one_hot_unchecked(labels: Tensor, num_classes: int = -1) -> Tensor:
    """WRONG: no validation: -1 matches no class and becomes an all-zero row."""
    c = num_classes if num_classes > 0 else int(labels.max()) + 1 if labels.numel() else 0
    return (labels.unsqueeze(-1) == torch.arange(c, device=labels.device)).long()


def one_hot_raw_scatter(labels: Tensor, num_classes: int = -1) -> Tensor:
    """WRONG: ``scatter_`` rejects -1 itself, but with a RuntimeError from deep inside, not a clear ValueError."""
    c = num_classes if num_classes > 0 else int(labels.max()) + 1 if labels.numel() else 1
    out = torch.zeros(*labels.shape, max(c, 1), dtype=torch.int64, device=labels.device)
    return out.scatter_(-1, labels.unsqueeze(-1), 1)


def one_hot_float(labels: Tensor, num_classes: int = -1) -> Tensor:
    """WRONG: the right ones and zeros, as float32 where ``F.one_hot`` gives int64."""
    return torch.nn.functional.one_hot(labels, num_classes).float()


def one_hot_shifted(labels: Tensor, num_classes: int = -1) -> Tensor:
    """WRONG: the 1 lands one class too far (wrapping around at C - 1)."""
    return torch.nn.functional.one_hot(labels, num_classes).roll(1, -1)


# -- fundamentals.minmax_normalize: kernels.tensor.minmax gone wrong --------------------------------
def minmax_unguarded(x: Tensor, dim=-1) -> Tensor:
    """WRONG: the textbook formula without the span == 0 guard: 0/0 = NaN on constant slices."""
    dims = tuple(range(x.ndim)) if dim is None else dim
    return (x - x.amin(dims, keepdim=True)) / (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True))


def minmax_global(x: Tensor, dim=-1) -> Tensor:
    """WRONG: ignores dim: scales by the whole tensor's min and max."""
    return (x - x.min()) / (x.max() - x.min())


def minmax_stats_keepdim_ignored(x: Tensor, dim=None, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """WRONG: ``minmax_stats`` that always keeps the reduced dims."""
    from kernels.tensor.minmax import minmax_stats

    return minmax_stats(x, dim, keepdim=True)


# -- fundamentals.cosine_similarity: arguments as the task's inputs (x1, x2, dim, pairwise, eps) -----
def cosine_no_eps(x1: Tensor, x2: Tensor, dim: int, pairwise: bool, eps: float) -> Tensor:
    """WRONG: divides by the raw norms: a zero vector gives 0/0 = NaN."""
    a, b, d = broadcast_pairs(x1, x2, dim, pairwise)
    return (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d))


def cosine_product_clamp(x1: Tensor, x2: Tensor, dim: int, pairwise: bool, eps: float) -> Tensor:
    """WRONG: clamps the product of the norms, max(||x1|| ||x2||, eps) (the old documented formula)."""
    a, b, d = broadcast_pairs(x1, x2, dim, pairwise)
    return (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d)).clamp_min(eps)


def cosine_eps_added(x1: Tensor, x2: Tensor, dim: int, pairwise: bool, eps: float) -> Tensor:
    """WRONG: adds eps to each norm instead of clamping it."""
    a, b, d = broadcast_pairs(x1, x2, dim, pairwise)
    return (a * b).sum(d) / ((a.norm(dim=d) + eps) * (b.norm(dim=d) + eps))


def cosine_pairwise_transposed(x1: Tensor, x2: Tensor, dim: int, pairwise: bool, eps: float) -> Tensor:
    """WRONG: all pairs with x2's rows paired with x1's (the (M, N) result transposed back, columns reversed)."""
    if not pairwise:
        return cosine_fused(x1, x2, dim, eps)
    return cosine_pairwise_matmul(x2, x1, eps).mT.contiguous().flip(-1)


# -- fundamentals.slicing_3d: kernels.tensor.indexing gone wrong (x, index as parse() gives) ---------
def slice_flip_then_step(x: Tensor, index: tuple) -> Tensor:
    """WRONG: a negative step as reverse-the-whole-dim-then-step: right only when the slice starts at the end."""
    parts, y = [], x
    for i in index:
        if isinstance(i, slice) and (i.step or 1) < 0:
            y = y.flip(len(parts))
            i = slice(None, None, -i.step)
        if not isinstance(i, (slice, int)):
            return index_slice(x, index)
        parts.append(i)
    return y[tuple(parts)]


def slice_advanced_in_order(x: Tensor, index: tuple) -> Tensor:
    """WRONG: selects the int first, then indexes the array: (n1, k) where NumPy's rule gives (k, n1)."""
    ints = [d for d, i in enumerate(index) if isinstance(i, int)]
    arrays = [d for d, i in enumerate(index) if isinstance(i, torch.Tensor)]
    if ints and arrays and abs(ints[0] - arrays[0]) > 1:
        y = x.select(ints[0], index[ints[0]])
        return y.index_select(arrays[0] - (ints[0] < arrays[0]), index[arrays[0]] % x.shape[arrays[0]])
    return index_slice(x, index)


def gather_shifted_base(x: Tensor, index: tuple) -> Tensor:
    """WRONG: ``index_gather`` from a base shifted by one along the first dim."""
    return index_gather(x[1:], index)


def slice_copies(x: Tensor, index: tuple) -> Tensor:
    """WRONG: a basic slice that copies (right values, but no view)."""
    return index_slice(x, index).clone()


# -- fundamentals.broadcasting: wrong shape rules (as kernels.tensor.iterator.broadcast_shape) ------
def lenient_rule(*shapes):
    """WRONG: takes the larger size instead of rejecting a mismatch such as (3,) vs (4,)."""
    nd = max(len(s) for s in shapes)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    return tuple(max(col) for col in zip(*padded))


def left_aligned(*shapes):
    """WRONG: pads missing dimensions on the right (aligns shapes on the left)."""
    nd = max(len(s) for s in shapes)
    return broadcast_shape(*[tuple(s) + (1,) * (nd - len(s)) for s in shapes])


def sub_tiled_wrong_axis(a: Tensor, b: Tensor) -> Tensor:
    """WRONG: a - b with b tiled along the wrong axis: the right shape, wrong values wherever b varies."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return a.expand(shape) - b.expand(shape).flip(0).contiguous()


# -- fundamentals.elementwise_manual: the engines of kernels.tensor.iterator gone wrong (op, *tensors)
def ignores_strides(op: str, *tensors: Tensor) -> Tensor:
    """WRONG: the loop reads every operand as if contiguous: right on plain inputs, wrong on views."""
    dense = [t.as_strided(t.shape, torch.empty(t.shape).stride()) for t in tensors]  # strides dropped
    return elementwise_loop(op, *dense)


def _loop_with(op: str, tensors: tuple, target: str, scalar_fn) -> Tensor:
    """The loop, with ``target``'s scalar function replaced by ``scalar_fn`` (values in broadcast order)."""
    if op != target:
        return elementwise_loop(op, *tensors)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    cols = [t.expand(shape).reshape(-1).tolist() for t in tensors]
    return torch.tensor([scalar_fn(*v) for v in zip(*cols)], dtype=tensors[0].dtype).view(shape)


def _taylor_exp(x: float) -> float:  # no range reduction: fine near 0, far off for |x| of tens
    return sum(x**n / math.factorial(n) for n in range(12)) if math.isfinite(x) else math.exp(x)


def loop_exp_taylor(op: str, *tensors: Tensor) -> Tensor:
    """WRONG: the loop with exp by a plain 12-term Taylor series (no range reduction)."""
    return _loop_with(op, tensors, "exp", _taylor_exp)


def loop_maximum_drops_nan(op: str, *tensors: Tensor) -> Tensor:
    """WRONG: the loop with maximum by Python's max(), which drops a NaN."""
    return _loop_with(op, tensors, "maximum", max)


def tiles_broadcast(op: str, *tensors: Tensor) -> Tensor:
    """WRONG: the strided engine forgets stride 0 for broadcast dims and tiles the small operand's storage."""
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    n = math.prod(shape)
    flat = [t.contiguous().reshape(-1).repeat(n // max(t.numel(), 1) or 1)[:n] for t in tensors]
    return VECTOR_OPS[op](*flat).view(shape)
