"""m4.vectorize_loops: loops and vectorized kernels agree; its mutants: test_mutants.py."""

import pytest
import torch

import kernels.tensor.vectorize as V
from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m4.vectorize_loops")


def test_check_passes_and_covers_five_kernels():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = set(rec.checks)
    for k in V.KERNELS:
        assert f"{k}: vectorized == loop" in names
    assert len(V.KERNELS) >= 5


@pytest.mark.parametrize("t_len", [1, 2, 3, 64, 65])
def test_ema_scan_matches_loop_at_every_length(t_len):
    x = torch.randn(t_len, 3, dtype=torch.float64)
    torch.testing.assert_close(V.ema_vec(x, 0.3), V.ema_loop(x, 0.3))


def test_bad_arguments_raise_clear_errors():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="window"):
        V.running_mean_vec(x, 11)
    with pytest.raises(ValueError, match="hi > lo"):
        V.histogram_vec(x, 4, 1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        V.ema_vec(x, 0.0)
    with pytest.raises(ValueError, match="one D"):
        V.pairwise_distances_vec(x, torch.randn(3, 5))
