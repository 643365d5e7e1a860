"""advanced.pruning: sparsity, masks through training and save/load, channel slicing (mutants: test_mutants.py)."""

import pytest
import torch
from torch import nn

from harness import REGISTRY
from harness.testing import run_check
from kernels.compress import prune as P

Task = REGISTRY.get("advanced.pruning")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"masks persist", "sliced model = masked model", "stated sparsity reached"} <= set(rec.checks)


def test_mask_2_4_keeps_the_two_largest_of_every_four():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.2, 1.0, 2.0, -3.0, 0.0]])
    torch.testing.assert_close(P.mask_2_4(w), torch.tensor([[0.0, -0.9, 0.5, 0.0, 0.0, 2.0, -3.0, 0.0]]))
    with pytest.raises(ValueError, match="multiple of 4"):
        P.mask_2_4(torch.ones(2, 6))


def test_remove_all_leaves_plain_weights_with_the_zeros():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    P.global_magnitude(net, 0.5)
    P.remove_all(net)
    keys = set(net.state_dict())
    assert keys == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert P.sparsity([net[0].weight, net[2].weight]) == pytest.approx(40 / 80)
    with pytest.raises(ValueError, match="share in"):
        P.global_magnitude(net, 1.0)


def test_slice_channels_keeps_the_surviving_filters_in_order():
    torch.manual_seed(0)
    a, b = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 4, 3)  # b reads 4 channels x 4 positions
    keep = torch.tensor([True, False, True, False])
    small_a, small_b = P.slice_channels(a, b, keep, spatial=4)
    assert small_a.weight.shape == (2, 1, 3, 3) and small_b.weight.shape == (3, 8)
    torch.testing.assert_close(small_a.weight, a.weight[[0, 2]])
    torch.testing.assert_close(small_b.weight[:, 4:], b.weight[:, 8:12])  # channel 2's four columns
    with pytest.raises(TypeError, match="Conv2d or Linear"):
        P.slice_channels(a, nn.ReLU(), keep)


def test_threshold_split_is_largest_pruned_and_smallest_kept_across_layers():
    before = [torch.tensor([0.1, -0.5, 2.0]), torch.tensor([[0.3, -4.0]])]
    after = [torch.tensor([0.0, -0.5, 2.0]), torch.tensor([[0.0, -4.0]])]
    assert P.threshold_split(before, after) == (0.30000001192092896, 0.5)
    per_layer = [torch.tensor([0.0, -0.5, 2.0]), torch.tensor([[0.3, 0.0]])]  # layer 2 pruned its larger one
    cut, kept = P.threshold_split(before, per_layer)
    assert cut > kept
