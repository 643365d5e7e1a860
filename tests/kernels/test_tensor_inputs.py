"""Input generators and small helpers moved out of the fundamentals task files (kernels.tensor)."""

import random

import torch

from kernels.tensor.broadcast_enum import random_shapes, shape_or_error
from kernels.tensor.cosine import broadcast_pairs, edge_vectors
from kernels.tensor.iterator import broadcast_shape, broadcast_sub, engine_operand
from kernels.tensor.reshape import shares_storage


def test_edge_vectors_hold_a_zero_and_a_tiny_vector_along_dim():
    v = edge_vectors((4, 6, 5), 1, torch.Generator().manual_seed(0), torch.float32)
    assert v.shape == (4, 6, 5) and not v.is_contiguous()
    norms = torch.linalg.vector_norm(v, dim=1).flatten()  # (20,)
    assert norms[0] == 0 and 0 < norms[1] < 1e-8 and (norms[2:] > 1e-3).all()


def test_broadcast_pairs_gives_all_pairs_or_the_operands():
    x1, x2 = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    a, b, d = broadcast_pairs(x1, x2, -1, pairwise=True)
    assert (a * b).shape == (2, 3, 5, 4) and d == -1
    assert broadcast_pairs(x1, x1, 1, pairwise=False) == (x1, x1, 1)


def test_engine_operand_strides_and_offset():
    g = torch.Generator().manual_seed(0)
    a = engine_operand((3, 4), g, torch.float32, True, "a")
    b = engine_operand((3, 4), g, torch.float32, True, "b")
    assert a.stride() == (1, 3) and b.stride() == (9, 2) and b.storage_offset() == 1
    assert engine_operand((), g, torch.float32, True, "a").shape == ()


def test_broadcast_sub_views_or_copies_and_random_shapes_reject_a_share():
    a, b = torch.randn(3, 1, 2), torch.randn(4, 2)
    torch.testing.assert_close(broadcast_sub(a, b), a - b)
    torch.testing.assert_close(broadcast_sub(a, b, materialise=True), a - b)
    rng = random.Random(0)
    outcomes = [shape_or_error(broadcast_shape, random_shapes(rng), ValueError) for _ in range(500)]
    rejected = sum(err is not None for _, err in outcomes)
    assert 50 < rejected < 250 and all("not broadcastable" in str(e) for _, e in outcomes if e is not None)
    assert not shares_storage(a, b)
