"""Issue 18: from-scratch operators agree with torch on torch's own edge cases.

Each test feeds the input named in the issue and compares with torch's value, computed here.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from kernels.amp import policy
from kernels.autograd import functions
from kernels.autograd import mini_autograd as ma
from kernels.layers import attention, batchnorm
from kernels.layers.losses import cross_entropy
from kernels.optim import optimizers, schedulers
from kernels.tensor import cosine, indexing, matmul, minmax


def test_cross_entropy_mean_all_ignored_has_zero_gradient() -> None:
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.full((4,), -100, dtype=torch.long)
    ours = cross_entropy(logits, target, reduction="mean")
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref_in = logits.detach().clone().requires_grad_(True)
    ref = F.cross_entropy(ref_in, target, reduction="mean")
    (g_ref,) = torch.autograd.grad(ref, ref_in)
    assert torch.isnan(ours) and torch.isnan(ref)
    torch.testing.assert_close(g_ours, g_ref)
    assert bool((g_ours == 0).all())


def test_softmax_function_over_empty_dim_is_empty() -> None:
    x = torch.randn(5, 0, 0, requires_grad=True)
    ours = functions.softmax(x, dim=-1)
    ref = torch.softmax(x.detach(), dim=-1)
    assert ours.shape == ref.shape == (5, 0, 0)
    (g,) = torch.autograd.grad(ours.sum(), x)
    assert g.shape == (5, 0, 0)


def test_relu_backward_passes_upstream_gradient_at_nan() -> None:
    x = torch.tensor([float("nan"), -1.0, 0.0, 2.0], dtype=torch.float64)
    upstream = torch.tensor([3.0, 4.0, 5.0, 6.0], dtype=torch.float64)
    ref_in = x.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(torch.relu(ref_in), ref_in, upstream)
    fn_in = x.clone().requires_grad_(True)
    (g_fn,) = torch.autograd.grad(functions.relu(fn_in), fn_in, upstream)
    torch.testing.assert_close(g_fn, g_ref)
    _, vjp_fn = ma.vjp(ma.relu, x)
    (g_ma,) = vjp_fn(upstream)
    torch.testing.assert_close(g_ma, g_ref)


def test_cosine_annealing_after_manual_lr_change_follows_torch() -> None:
    def trace(make):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make(opt)
        out = []
        for t in range(1, 25):  # past T_max, through the trough and back up
            opt.step()
            sched.step()
            if t == 3:
                opt.param_groups[0]["lr"] *= 0.5  # changed by hand mid-schedule
            out.append(opt.param_groups[0]["lr"])
        return torch.tensor(out, dtype=torch.float64)

    ref = trace(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01))
    ours = trace(lambda o: schedulers.CosineAnnealingLR(o, T_max=10, eta_min=0.01))
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-15)
    # the closed form is the contrast: it ignores the hand change
    closed = schedulers.cosine_annealing_lr(4, 1.0, 10, 0.01)
    assert abs(closed - float(ref[3])) > 0.1


def test_adam_adamw_continue_exactly_after_loading_a_torch_state_dict() -> None:
    for name in ("Adam", "AdamW"):
        gen = torch.Generator().manual_seed(0)
        p0 = torch.randn(6, dtype=torch.float64, generator=gen)
        grads = [torch.randn(6, dtype=torch.float64, generator=gen) for _ in range(6)]
        ref_p = torch.nn.Parameter(p0.clone())
        ref = getattr(torch.optim, name)([ref_p], lr=0.1)
        for g in grads[:3]:
            ref_p.grad = g.clone()
            ref.step()
        own_p = torch.nn.Parameter(ref_p.detach().clone())
        own = getattr(optimizers, name)([own_p], lr=0.1)
        own.load_state_dict(copy.deepcopy(ref.state_dict()))  # else the moments are shared
        assert isinstance(own.state[own_p]["step"], int)
        for g in grads[3:]:
            ref_p.grad, own_p.grad = g.clone(), g.clone()
            ref.step()
            own.step()
        torch.testing.assert_close(own_p.detach(), ref_p.detach(), rtol=1e-14, atol=1e-15)


def test_batchnorm_rejects_nonpositive_eps_with_batch_statistics() -> None:
    x = torch.randn(4, 3)
    for eps in (0.0, -1.0):
        with pytest.raises(ValueError, match="eps must be positive"):
            torch.nn.BatchNorm1d(3, eps=eps)(x)
        with pytest.raises(ValueError, match="eps must be positive"):
            batchnorm.BatchNorm1d(3, eps=eps)(x)
    # eval with running statistics: torch accepts eps = 0, and so do we
    torch.testing.assert_close(batchnorm.BatchNorm1d(3, eps=0.0).eval()(x), torch.nn.BatchNorm1d(3, eps=0.0).eval()(x))


def test_minmax_nan_slice_rule_operators_and_task_reference_agree() -> None:
    from harness import REGISTRY  # task files load by path, never as benches.* modules

    Task = REGISTRY.get("fundamentals.minmax_normalize")

    x = torch.tensor([[1.0, float("nan"), 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    # the rule, from torch's own reductions: a NaN slice has NaN min and max
    lo, hi = x.amin(1, keepdim=True), x.amax(1, keepdim=True)
    expected = torch.where(hi - lo == 0, torch.zeros_like(x), (x - lo) / (hi - lo))
    assert bool(expected[0].isnan().all()) and bool((expected[2] == 0).all())
    for fn in (minmax.minmax_naive, minmax.minmax_aminmax, minmax.minmax_fused):
        torch.testing.assert_close(fn(x, 1), expected, equal_nan=True)
    torch.testing.assert_close(Task().reference(x, 1), expected, equal_nan=True)


def test_mha_without_weights_fully_masked_row_is_zero_with_finite_gradients() -> None:
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    own = attention.MultiheadAttention.from_torch(ref)
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    kpm = torch.tensor([[True, True, True], [False, True, False]])  # batch 0: every key masked
    outs, grads = [], []
    for m in (ref, own):
        xi = x.clone().requires_grad_(True)
        out, w = m(xi, xi, xi, key_padding_mask=kpm, need_weights=False)
        assert w is None
        (g,) = torch.autograd.grad(out.sum(), xi)
        outs.append(out.detach())
        grads.append(g)
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])
    assert bool(torch.isfinite(grads[1]).all())


def test_mha_from_torch_copies_kdim_vdim_and_refuses_dropout_clearly() -> None:
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=5).double()
    q, k, v = (torch.randn(n, 1, d, dtype=torch.float64) for n, d in ((3, 8), (4, 6), (4, 5)))
    own = attention.MultiheadAttention.from_torch(ref)  # was an AttributeError (issue 18.11)
    for got, want in zip(own(q, k, v), ref(q, k, v)):
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="dropout=0.1 not supported"):
        attention.MultiheadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, dropout=0.1))


def test_cosine_broadcast_along_reduced_dim_and_fused_is_differentiable() -> None:
    torch.manual_seed(0)
    x1 = torch.randn(1, 2, 3, dtype=torch.float64)
    x2 = torch.randn(2, 1, 3, dtype=torch.float64)
    ref = F.cosine_similarity(x1, x2, dim=-2)
    for fn in (cosine.cosine_naive, cosine.cosine_fused):
        torch.testing.assert_close(fn(x1, x2, dim=-2), ref)
    a, b = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    ga = torch.autograd.grad(F.cosine_similarity(a, b, dim=-2).sum(), (a, b))
    a2, b2 = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    go = torch.autograd.grad(cosine.cosine_fused(a2, b2, dim=-2).sum(), (a2, b2))
    for o, r in zip(go, ga):
        torch.testing.assert_close(o, r)


def test_manual_autocast_leaves_out_calls_alone() -> None:
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    ref_out, own_out = torch.empty(3, 5), torch.empty(3, 5)
    with torch.autocast("cpu"):
        ref = torch.mm(a, b, out=ref_out)
    with policy.ManualAutocast(policy.CPU_BF16_POLICY):
        own = torch.mm(a, b, out=own_out)
    assert own is own_out and own.dtype == ref.dtype == torch.float32
    torch.testing.assert_close(own_out, ref_out)


def test_slicing_3d_with_a_2d_index_tensor() -> None:
    x = torch.arange(5 * 9 * 11, dtype=torch.float32).reshape(5, 9, 11)
    idx = torch.tensor([[0, 4], [2, 1]])
    cases = [(idx,), (slice(None), idx), (idx, slice(1, 8, 2), torch.tensor([3, -1])), (idx, 2), (1, slice(None), idx)]
    for index in cases:
        # NumPy's rules (the module's): an int beside an array is advanced too, where torch's
        # x[1, :, idx] differs; on the input (idx,) NumPy and torch agree
        ref = torch.from_numpy(x.numpy()[tuple(i.numpy() if isinstance(i, torch.Tensor) else i for i in index)])
        for fn in (indexing.index_gather, indexing.index_slice):
            torch.testing.assert_close(fn(x, index), ref, msg=f"{fn.__name__} {index}")
    assert indexing.index_gather(x, (idx,)).shape == x[idx].shape == (2, 2, 9, 11)


def test_manual_matmuls_follow_torch_matmul_rank_rules() -> None:
    g = torch.Generator().manual_seed(0)
    shapes = [((5, 10), (5, 10, 5)), ((10,), (10, 5)), ((0, 0), (5, 0, 0)), ((10,), (10,)), ((3, 10), (10,))]
    shapes += [((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]
    for sa, sb in shapes:
        a = torch.randn(sa, generator=g, dtype=torch.float64)
        b = torch.randn(sb, generator=g, dtype=torch.float64)
        ref = torch.matmul(a, b)
        for fn in (matmul.matmul_loop, matmul.matmul_broadcast_sum, matmul.matmul_blocked):
            torch.testing.assert_close(fn(a, b), ref, msg=f"{fn.__name__} {sa} @ {sb}")
    for fn in (matmul.matmul_loop, matmul.matmul_blocked):
        with pytest.raises(RuntimeError, match="at least 1D"):
            fn(torch.tensor(1.0), torch.ones(2))
