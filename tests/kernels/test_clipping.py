"""kernels/optim/clipping.py: clip_grad_norm_ / clip_grad_value_ against torch.nn.utils."""

import pytest
import torch

from kernels.optim.clipping import clip_grad_norm_, clip_grad_value_, vector_norm

INF = float("inf")


def _params(seed=0, scale=1.0, dtype=torch.float32, with_none=True):
    """Parameters with gradients of various shapes, one with grad None, one empty."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 3, 2), (0,), (1,)]
    ps = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(*s, generator=g, dtype=dtype))
        p.grad = torch.randn(*s, generator=g, dtype=dtype) * scale
        ps.append(p)
    if with_none:
        ps.append(torch.nn.Parameter(torch.randn(2, dtype=dtype)))  # .grad stays None
    return ps


def _twin(ps):
    out = []
    for p in ps:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


def _grads(ps):
    return [p.grad for p in ps if p.grad is not None]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, INF, -INF, 0.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("foreach", [False, True])
def test_clip_grad_norm_equals_torch(norm_type, max_norm, foreach):
    if norm_type in (INF, -INF, "inf"):  # the +-inf norm of the empty (0,) grad is undefined
        mine = [p for p in _params(1) if p.numel()]
    else:
        mine = _params(1)
    ref = _twin(mine)
    a = clip_grad_norm_(mine, max_norm, norm_type, foreach=foreach)
    b = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type, foreach=foreach)
    torch.testing.assert_close(a, b)
    for x, y in zip(_grads(mine), _grads(ref)):
        torch.testing.assert_close(x, y)
    assert mine[-1].grad is None


def test_clip_grad_norm_float64_tight():
    mine = _params(2, scale=10.0, dtype=torch.float64)
    ref = _twin(mine)
    a = clip_grad_norm_(mine, 1.0)
    b = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for x, y in zip(_grads(mine), _grads(ref)):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_clip_grad_norm_mixed_dtypes():
    # per-tensor norms in each tensor's own dtype, stacked with type promotion (float64);
    # the float32 norms carry float32 rounding, hence the float32 tolerance
    mine = _params(2, scale=10.0, dtype=torch.float64) + _params(3, scale=5.0, dtype=torch.float32)
    ref = _twin(mine)
    a = clip_grad_norm_(mine, 1.0)
    b = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    assert a.dtype == b.dtype == torch.float64
    torch.testing.assert_close(a, b, rtol=1.3e-6, atol=1e-5)
    for x, y in zip(_grads(mine), _grads(ref)):
        torch.testing.assert_close(x, y, rtol=1.3e-6, atol=1e-5)


def test_clipped_norm_is_max_norm():
    ps = _params(4, scale=10.0)
    clip_grad_norm_(ps, 2.0)
    total = torch.cat([g.flatten() for g in _grads(ps)]).norm()
    assert total.item() == pytest.approx(2.0, rel=1e-5)


def test_no_gradients_gives_zero_norm_like_torch():
    ps = [torch.nn.Parameter(torch.ones(3)) for _ in range(2)]
    a = clip_grad_norm_(ps, 1.0)
    b = torch.nn.utils.clip_grad_norm_(_twin(ps), 1.0)
    torch.testing.assert_close(a, b)
    assert a.item() == 0.0
    assert clip_grad_norm_([], 1.0).item() == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in []), 1.0)


def test_single_tensor_argument():
    p = torch.nn.Parameter(torch.ones(4))
    p.grad = torch.full((4,), 3.0)
    q = _twin([p])[0]
    torch.testing.assert_close(clip_grad_norm_(p, 1.0), torch.nn.utils.clip_grad_norm_(q, 1.0))
    torch.testing.assert_close(p.grad, q.grad)


@pytest.mark.parametrize("bad", [INF, float("nan")])
def test_nonfinite_norm_raises_or_propagates_like_torch(bad):
    mine = _params(5)
    mine[0].grad[0, 0] = bad
    ref = _twin(mine)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(mine, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(ref, 1.0, error_if_nonfinite=True)
    a = clip_grad_norm_(mine, 1.0)
    b = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    torch.testing.assert_close(a, b, equal_nan=True)
    for x, y in zip(_grads(mine), _grads(ref)):
        torch.testing.assert_close(x, y, equal_nan=True)


@pytest.mark.parametrize("clip_value", [0.3, 2.0, -0.5])
@pytest.mark.parametrize("foreach", [False, True])
def test_clip_grad_value_equals_torch(clip_value, foreach):
    mine = _params(6, scale=2.0)
    ref = _twin(mine)
    assert clip_grad_value_(mine, clip_value, foreach=foreach) is None
    torch.nn.utils.clip_grad_value_(ref, clip_value, foreach=foreach)
    for x, y in zip(_grads(mine), _grads(ref)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_vector_norm_equals_linalg():
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for p in [1, 2, 3, 0.5, INF, -INF, 0]:
        torch.testing.assert_close(vector_norm(x, p), torch.linalg.vector_norm(x, p), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- planted bugs


def _clip_per_tensor(ps, max_norm):
    """Planted bug: clips each tensor to max_norm separately instead of the joint norm."""
    for g in _grads(ps):
        n = g.norm()
        g.mul_(torch.clamp(max_norm / (n + 1e-6), max=1.0))


def _inf_norm_as_sum(ps, max_norm):
    """Planted bug: treats the inf-norm total as the sum of per-tensor maxima."""
    total = sum(g.abs().max() for g in _grads(ps) if g.numel())
    for g in _grads(ps):
        g.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def test_planted_clipping_bugs_are_caught():
    mine = _params(8, scale=3.0)
    ref = _twin(mine)
    _clip_per_tensor(mine, 1.0)
    torch.nn.utils.clip_grad_norm_(ref, 1.0)
    with pytest.raises(AssertionError):
        for x, y in zip(_grads(mine), _grads(ref)):
            torch.testing.assert_close(x, y)

    mine = [p for p in _params(9, scale=3.0) if p.numel()]
    ref = _twin(mine)
    a = _inf_norm_as_sum(mine, 1.0)
    b = torch.nn.utils.clip_grad_norm_(ref, 1.0, norm_type=INF)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("norm_type", [INF, -INF])
def test_inf_norm_of_empty_gradient_raises_like_torch(norm_type):
    mine = _params(10)
    with pytest.raises(RuntimeError, match="empty tensor"):
        clip_grad_norm_(mine, 1.0, norm_type)
    with pytest.raises(RuntimeError, match="empty tensor"):
        torch.nn.utils.clip_grad_norm_(_twin(mine), 1.0, norm_type)
