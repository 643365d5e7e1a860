"""kernels.tensor.strided_wrong (m1.strided_tensor's mutants) and the chain helpers its check calls."""

from __future__ import annotations

import pytest
import torch

from kernels.tensor.index_chains import CATEGORIES, run_chains, torch_index_error
from kernels.tensor.strided import StridedTensor
from kernels.tensor.strided_wrong import IgnoresStepSign, NumpyNoneStride, ShapeOnlyTranspose


def test_run_chains_finds_nothing_on_the_right_class_and_something_on_a_wrong_one():
    ok, n_neg = run_chains(StridedTensor, seed=0, n=60, dtype=torch.float32, device="cpu")
    assert set(ok) == set(CATEGORIES) and not any(ok.values()) and 0 < n_neg < 60
    bad, _ = run_chains(IgnoresStepSign, seed=0, n=60, dtype=torch.float32, device="cpu")
    assert bad["layout vs NumPy"]


def test_wrong_classes_keep_their_bug_through_views():
    v = ShapeOnlyTranspose(torch.arange(9.0), (3, 3))[:, None].permute(1, 0, 2)
    assert type(v) is ShapeOnlyTranspose and v.transpose(1, 2).strides == v.strides  # strides never swap
    n = NumpyNoneStride(torch.arange(6.0), (2, 3))[None]
    assert n.strides[0] == 0


def test_torch_index_error_is_torchs_message():
    t = torch.zeros(3, 4)
    assert "index 5 is out of bounds" in torch_index_error(t, (5,))
    with pytest.raises(AssertionError, match="torch accepted"):
        torch_index_error(t, (1,))
