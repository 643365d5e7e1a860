"""kernels/layers/losses.py: Huber and cross-entropy against torch.nn.functional."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from kernels.layers.losses import cross_entropy, huber_loss, log_softmax

REDUCTIONS = ("none", "mean", "sum")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- Huber


@pytest.mark.parametrize("reduction,delta", list(itertools.product(REDUCTIONS, [0.1, 1.0, 2.5])))
def test_huber_equals_torch(reduction, delta):
    for dtype in (torch.float32, torch.float64):
        x = (torch.randn(6, 7, generator=_gen(0)) * 3).to(dtype).requires_grad_()
        t = (torch.randn(6, 7, generator=_gen(1)) * 3).to(dtype)
        x2 = x.detach().clone().requires_grad_()
        a = huber_loss(x, t, reduction=reduction, delta=delta)
        b = F.huber_loss(x2, t, reduction=reduction, delta=delta)
        torch.testing.assert_close(a, b)
        a.sum().backward()
        b.sum().backward()
        torch.testing.assert_close(x.grad, x2.grad)


def test_huber_at_the_delta_boundary_equals_torch():
    x = torch.tensor([1.0, -1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    t = torch.zeros(4, dtype=torch.float64)
    x2 = x.detach().clone().requires_grad_()
    huber_loss(x, t, "sum", 1.0).backward()
    F.huber_loss(x2, t, reduction="sum", delta=1.0).backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_huber_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, generator=_gen(2), requires_grad=True)
    t = torch.randn(4, 3, dtype=torch.float64, generator=_gen(3))
    assert gradcheck(lambda a: huber_loss(a, t, "mean", 0.7), (x,))


def test_planted_huber_with_wrong_linear_branch_is_caught():
    x, t = torch.randn(50, generator=_gen(4)) * 3, torch.zeros(50)

    def wrong(a, b, delta):  # forgets the -0.5 delta offset of the linear branch
        d = (a - b).abs()
        return torch.where(d < delta, 0.5 * d * d, delta * d).mean()

    with pytest.raises(AssertionError):
        torch.testing.assert_close(wrong(x, t, 1.0), F.huber_loss(x, t, delta=1.0))


# ---------------------------------------------------------------- cross-entropy


def _ce_case(shape, seed, ignore_every=3, ignore_index=-100):
    g = _gen(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = torch.randint(0, c, tshape, generator=g)
    if t.dim() and ignore_every:
        t.view(-1)[::ignore_every] = ignore_index
    w = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    return x, t, w


SHAPES = [(5,), (6, 4), (3, 4, 5), (2, 3, 2, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_indices_equal_torch(shape, reduction):
    x, t, w = _ce_case(shape, seed=len(shape))
    for weight, smoothing, ign in itertools.product([None, w], [0.0, 0.2, 1.0], [-100, 1]):
        tt = t.clone()
        if ign == 1:  # a real class used as ignore_index; no -100 targets then
            tt[tt == -100] = 0
            if tt.dim():
                tt.view(-1)[1::4] = 1
        a = cross_entropy(x, tt, weight=weight, ignore_index=ign, reduction=reduction, label_smoothing=smoothing)
        b = F.cross_entropy(x, tt, weight=weight, ignore_index=ign, reduction=reduction, label_smoothing=smoothing)
        # equal_nan: a 'mean' over only ignored targets is 0/0 = NaN in torch too
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets_equal_torch(shape, reduction):
    x, _, w = _ce_case(shape, seed=10 + len(shape))
    cdim = 0 if len(shape) == 1 else 1
    p = torch.softmax(torch.randn(*shape, generator=_gen(5), dtype=torch.float64), cdim)
    for weight, smoothing in itertools.product([None, w], [0.0, 0.3]):
        a = cross_entropy(x, p, weight=weight, reduction=reduction, label_smoothing=smoothing)
        b = F.cross_entropy(x, p, weight=weight, reduction=reduction, label_smoothing=smoothing)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_cross_entropy_gradients_equal_torch_float32():
    x, t, w = _ce_case((8, 5, 3), seed=20)
    x = x.float().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    w = w.float()
    cross_entropy(x, t, weight=w, label_smoothing=0.1).backward()
    F.cross_entropy(x2, t, weight=w, label_smoothing=0.1).backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_cross_entropy_gradcheck():
    x, t, w = _ce_case((4, 3), seed=21)
    x.requires_grad_()
    assert gradcheck(lambda a: cross_entropy(a, t, weight=w, label_smoothing=0.2), (x,))


def test_cross_entropy_large_logits_finite():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    t = torch.tensor([0, 2])
    torch.testing.assert_close(cross_entropy(x, t), F.cross_entropy(x, t))
    torch.testing.assert_close(log_softmax(x, 1), torch.log_softmax(x, 1))


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x = torch.randn(3, 4)
    t = torch.full((3,), -100)
    assert torch.isnan(cross_entropy(x, t)) and torch.isnan(F.cross_entropy(x, t))


def _ce_smoothing_on_ignored(x, t, eps, ignore_index=-100):
    """Planted bug: the smoothing term is not masked at ignored positions."""
    logp = torch.log_softmax(x, 1)
    valid = t != ignore_index
    safe = torch.where(valid, t, 0)
    nll = -logp.gather(1, safe[:, None])[:, 0] * valid
    smooth = -logp.sum(1)  # BUG: ignored rows still contribute
    c = x.shape[1]
    return ((1 - eps) * nll.sum() + eps / c * smooth.sum()) / valid.sum()


def _ce_mean_over_all_rows(x, t, weight):
    """Planted bug: weighted mean divides by N instead of the summed target weights."""
    per = F.cross_entropy(x, t, weight=weight, reduction="none")
    return per.sum() / t.numel()


def test_planted_cross_entropy_bugs_are_caught():
    x, t, w = _ce_case((6, 4), seed=30)
    ref = F.cross_entropy(x, t, label_smoothing=0.2)
    torch.testing.assert_close(cross_entropy(x, t, label_smoothing=0.2), ref)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(_ce_smoothing_on_ignored(x, t, 0.2), ref)
    t2 = t.clone()
    t2[t2 < 0] = 0
    with pytest.raises(AssertionError):
        torch.testing.assert_close(_ce_mean_over_all_rows(x, t2, w), F.cross_entropy(x, t2, weight=w))


# ---------------------------------------------------------------- bad input


def test_huber_shape_mismatch_message_shows_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        huber_loss(torch.zeros(3, 4), torch.zeros(4, 3))


def test_huber_bad_delta_and_reduction():
    with pytest.raises(ValueError, match="delta"):
        huber_loss(torch.zeros(3), torch.zeros(3), delta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        huber_loss(torch.zeros(3), torch.zeros(3), reduction="avg")
    with pytest.raises(TypeError):
        huber_loss(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))


def test_cross_entropy_shape_mismatch_message_shows_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5,\)"):
        cross_entropy(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(2, 5\)"):
        cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 2\)"):
        cross_entropy(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"weight"):
        cross_entropy(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), weight=torch.ones(2))


def test_cross_entropy_bad_values():
    with pytest.raises(IndexError, match="target 7"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError):
        cross_entropy(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]))
