"""The digits-feature Fréchet distance (harness.gan_metric) against torchmetrics and its sanity properties."""

import pytest
import torch

from harness.gan_metric import LABEL, digits_classifier, digits_fd, digits_images, frechet_distance


def _halves():
    x, _ = digits_images()
    p = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    return x[p[:800]], x[p[800:1600]]


def test_equals_closed_form_for_diagonal_gaussians():
    # diagonal covariances: FD = |dmu|^2 + sum (s_a - s_b)^2 over the standard deviations
    g = torch.Generator().manual_seed(1)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 1.5]) + 1
    want = 3 * 1.0 + (1 - 2) ** 2 + 0 + (0.5 - 1.5) ** 2
    assert frechet_distance(a, b) == pytest.approx(want, rel=0.05)


def test_matches_torchmetrics_given_the_same_features():
    tm = pytest.importorskip("torchmetrics.image.fid", reason="needs torchmetrics")
    net, _ = digits_classifier()

    class Features(torch.nn.Module):
        def forward(self, x):
            return net.features(x.float())

    real, fake = _halves()
    fid = tm.FrechetInceptionDistance(feature=Features(), input_img_size=(1, 8, 8))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    ours = frechet_distance(net.features(real), net.features(fake))
    assert ours == pytest.approx(float(fid.compute()), rel=1e-5)


def test_real_vs_real_far_below_real_vs_noise():
    net, acc = digits_classifier()
    assert acc > 0.95, f"feature classifier held-out accuracy {acc:.3f}"
    real, other = _halves()
    rr = frechet_distance(net.features(real), net.features(other))
    noise = torch.rand(800, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert 20 * rr < digits_fd(noise, real)
    assert "not comparable" in LABEL


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="features"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(4, 2))
