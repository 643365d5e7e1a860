"""harness.gan_train: the shared pieces of the GAN drills' adversarial loop."""

import math

import pytest
import torch
from torch import nn

from harness.gan_train import (
    adam,
    bce_d_loss,
    bce_g_loss,
    d_step,
    descend,
    digits_pair,
    expect_70x70_patchgan,
    expect_fd_below,
    expect_in_range,
    g_step,
    gan_step,
    grid,
    have,
    minibatches,
    record_fd,
    sample,
    sampling,
    snapshot,
    steps_curve,
    unchanged,
)


class _G(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 4)

    def forward(self, z, y=None):
        return torch.tanh(self.lin(z) + (0 if y is None else y[:, None].float()))


class _D(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x, y=None):
        return self.lin(x).squeeze(1) + (0 if y is None else y.float())


class _Ctx:
    def __init__(self):
        self.checks, self.curves, self.skipped, self.metrics = {}, [], [], {}

    def metric(self, name, value):
        self.metrics[name] = float(value)

    def expect(self, cond, message, *, name=None):
        self.checks[name] = (cond, message)

    def curve(self, name, x, y, **kw):
        self.curves.append((name, x, y, kw))

    def image(self, name, img, **kw):
        self.images = (name, img, kw)

    def skip_part(self, part, reason):
        self.skipped.append((part, reason))


def _pair():
    torch.manual_seed(0)
    G, D = _G(), _D()
    return G, D, adam(0.1, G), adam(0.1, D)


def test_bce_losses_equal_the_formulas():
    r, f = torch.tensor([2.0, -1.0], dtype=torch.float64), torch.tensor([-3.0, 0.5], dtype=torch.float64)
    sig = torch.sigmoid
    assert torch.allclose(bce_d_loss(r, f), -(sig(r).log().mean() + (1 - sig(f)).log().mean()))
    assert torch.allclose(bce_g_loss(f), -sig(f).log().mean())


def test_d_step_moves_only_d_and_leaves_no_gradient_in_g():
    G, D, _, opt_d = _pair()
    g0, d0 = snapshot(G), snapshot(D)
    d_step(G, D, opt_d, torch.rand(8, 4), torch.randn(8, 2))
    assert all(p.grad is None for p in G.parameters())
    assert unchanged(g0, G) and not unchanged(d0, D)


def test_d_step_without_detach_fills_g_grad():
    G, D, _, opt_d = _pair()
    d_step(G, D, opt_d, torch.rand(8, 4), torch.randn(8, 2), detach=False)
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters())


def test_g_step_moves_only_g_and_gan_step_passes_labels():
    G, D, opt_g, opt_d = _pair()
    d0 = snapshot(D)
    g_step(G, D, opt_g, torch.randn(8, 2))
    assert unchanged(d0, D)
    d, g = gan_step(G, D, opt_g, opt_d, torch.rand(8, 4), torch.randn(8, 2), torch.arange(8))
    assert not d.requires_grad and not g.requires_grad and math.isfinite(float(d) + float(g))


def test_gan_step_runs_g_once_and_matches_d_then_g_on_the_same_fakes():
    G, D, opt_g, opt_d = _pair()
    calls = []
    G.register_forward_hook(lambda *a: calls.append(1))
    real, z, y = torch.rand(8, 4), torch.randn(8, 2), torch.arange(8)
    G2, D2, opt_g2, opt_d2 = _pair()
    d, g = gan_step(G, D, opt_g, opt_d, real, z, y)
    assert len(calls) == 1  # one forward of G per step (detached for D, attached for G)
    fake = G2(z, y)  # the reference: pytorch/examples' DCGAN step, fakes computed once
    d2 = descend(opt_d2, bce_d_loss(D2(real, y), D2(fake.detach(), y)))
    g2 = descend(opt_g2, bce_g_loss(D2(fake, y)))
    assert torch.equal(d, d2) and torch.equal(g, g2)
    assert all(torch.equal(a, b) for a, b in zip(snapshot(G), snapshot(G2), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(snapshot(D), snapshot(D2), strict=True))


def test_minibatches_draw_the_same_rows_of_each_tensor_and_are_seeded():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    got = list(minibatches(torch.Generator().manual_seed(3), 4, 5, x, y))
    assert len(got) == 4 and all(torch.equal(a[:, 0].long(), b) for a, b in got)
    again = list(minibatches(torch.Generator().manual_seed(3), 4, 5, x))
    assert all(torch.equal(a, b) for (a, _), b in zip(got, again))


def test_sample_and_sampling_run_without_grad():
    G, *_ = _pair()
    s = sample(G, 6, 2, torch.Generator().manual_seed(1))
    assert s.shape == (6, 4) and not s.requires_grad
    prep = sampling(G, torch.randn(5, 2))
    assert prep.items == 5 and prep.item_unit == "samples" and not prep.fn().requires_grad


def test_expect_in_range_fails_outside_the_tanh_range_and_on_nan():
    ctx = _Ctx()
    expect_in_range(ctx, torch.tensor([-1.0, 1.0]))
    assert ctx.checks["samples in range"][0]
    for bad in (torch.tensor([0.0, 1.5]), torch.tensor([0.0, float("nan")])):
        expect_in_range(ctx, bad, who="G's samples")
        ok, msg = ctx.checks["samples in range"]
        assert not ok and "G's samples" in msg


def test_steps_curve_counts_from_one_and_have_records_a_skip():
    ctx = _Ctx()
    steps_curve(ctx, "loss", [torch.tensor(2.0), 1.0], y_label="BCE")
    assert ctx.curves == [("loss", [1, 2], [2.0, 1.0], {"y_label": "BCE"})]
    assert have(ctx, "torch", "x") and not ctx.skipped
    assert not have(ctx, "no_such_module_xyz", "part", pip="no-such")
    assert ctx.skipped == [("part", "needs no-such (pip install no-such)")]


@pytest.mark.parametrize("side", [8, 16])
def test_noise_fd_is_large_and_real_digits_beat_it(side):
    from harness.gan_metric import digits_images
    from harness.gan_train import noise_fd

    noise = noise_fd(torch.Generator().manual_seed(0), n=64, side=side)
    ctx = _Ctx()
    fd = expect_fd_below(ctx, digits_images()[0][:256], noise, 0.5, name="beats noise")
    assert noise > 1.0 and fd < 0.5 * noise and ctx.checks["beats noise"][0]
    expect_fd_below(ctx, torch.rand(64, 1, 8, 8) * 2 - 1, noise, 0.5, name="beats noise", who="noise")
    ok, msg = ctx.checks["beats noise"]
    assert not ok and msg.startswith("noise FD")
    assert record_fd(ctx, digits_images()[0][:256], noise, "gan_fd", "gan_fd_vs_noise") == fd
    assert ctx.metrics == {"gan_fd": fd, "gan_fd_vs_noise": fd / noise}


def test_published_patchgan_is_70x70():
    ctx = _Ctx()
    expect_70x70_patchgan(ctx, 4)
    assert ctx.checks["70x70 PatchGAN"][0]


def test_grid_of_rows_takes_the_first_nrow_of_each():
    ctx = _Ctx()
    a, b = torch.zeros(9, 1, 2, 2), torch.ones(9, 1, 2, 2)
    grid(ctx, "pics", [a, b], "rows", nrow=6)
    name, img, kw = ctx.images
    assert img.shape == (12, 1, 2, 2) and float(img[:6].sum()) == 0 and float(img[6:].mean()) == 1
    assert kw == {"nrow": 6, "vmin": -1, "vmax": 1, "caption": "rows"}


def test_digits_pair_is_seeded_and_conditional_on_request():
    from types import SimpleNamespace

    cfg = SimpleNamespace(z_dim=4, width=8, lr=1e-3)
    (G1, _, opt_g, _), (G2, *_) = digits_pair(3, cfg, "cpu"), digits_pair(3, cfg, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(G1.parameters(), G2.parameters()))
    assert opt_g.defaults["betas"] == (0.5, 0.999) and G1(torch.randn(2, 4)).shape == (2, 1, 8, 8)
    G, D, *_ = digits_pair(0, cfg, "cpu", classes=10)
    assert D(G(torch.randn(2, 4), torch.tensor([1, 2])), torch.tensor([1, 2])).shape == (2,)
