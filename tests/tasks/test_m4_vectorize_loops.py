"""m4.vectorize_loops: loops and vectorized kernels agree; planted vectorization bugs are caught."""

import pytest
import torch

import kernels.tensor.vectorize as V
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m4.vectorize_loops")


def test_check_passes_and_covers_five_kernels():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = set(rec.checks)
    for k in V.KERNELS:
        assert f"{k}: vectorized == loop" in names
    assert len(V.KERNELS) >= 5


def _planted(kernel: str, wrong):
    class Wrong(Task):
        def kernel(self, variant, name):
            if variant == "vectorized" and name == kernel:
                return wrong
            return super().kernel(variant, name)

    return Wrong


def test_histogram_off_by_one_bins_is_caught():
    def hist_off_by_one(x, bins, lo, hi):
        v = x.reshape(-1).double()
        v = v[(v >= lo) & (v <= hi)]
        k = ((v - lo) * bins / (hi - lo)).ceil().long().clamp(0, bins - 1)  # ceil: edges go one bin up
        return torch.bincount(k, minlength=bins)

    expect_check_fails(_planted("histogram", hist_off_by_one), match="histogram")


def test_histogram_dropping_the_top_edge_is_caught():
    def hist_open_top(x, bins, lo, hi):
        v = x.reshape(-1).double()
        v = v[(v >= lo) & (v < hi)]  # hi itself is lost
        return torch.bincount(((v - lo) * bins / (hi - lo)).floor().long(), minlength=bins)

    expect_check_fails(_planted("histogram", hist_open_top), match="histogram")


def test_running_mean_window_off_by_one_is_caught():
    def rm_short_window(x, w):
        return V.running_mean_vec(x, w)[:-1]  # one window too few

    expect_check_fails(_planted("running_mean", rm_short_window), match="running_mean")


def test_ema_with_wrong_start_is_caught():
    def ema_zero_start(x, alpha):
        y = V.ema_vec(x, alpha)
        return y - (1 - alpha) ** torch.arange(1, x.shape[0] + 1).view(-1, *[1] * (x.dim() - 1)) * x[0]

    expect_check_fails(_planted("ema", ema_zero_start), match="ema")


def test_transposed_distances_are_caught():
    expect_check_fails(
        _planted("pairwise_distances", lambda x, y: torch.cdist(y, x).T.contiguous()[:, :-1]),
        match="pairwise_distances",
    )


def test_loop_and_vectorized_sharing_a_bug_are_caught_by_torch_reference():
    class BothWrong(Task):
        def kernel(self, variant, name):
            if name == "gram":
                return lambda x: V.gram_vec(x) + 1.0 if variant == "vectorized" else V.gram_loop(x) + 1.0
            return super().kernel(variant, name)

    expect_check_fails(BothWrong, match="gram: vectorized == torch")


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
