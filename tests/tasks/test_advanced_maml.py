"""advanced.maml: meta-gradient = torch.func = finite differences, adaptation helps (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.meta import maml

Task = REGISTRY.get("advanced.maml")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"meta-gradient = finite differences", "adaptation lowers the query MSE"} <= set(rec.checks)


def test_sine_tasks_follow_the_paper_ranges():
    t = maml.sample_sine_tasks(500, 10, 5, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert t.xs.shape == (500, 10, 1) and t.xq.shape == (500, 5, 1)
    assert 0.1 <= float(t.amp.min()) and float(t.amp.max()) <= 5.0
    assert 0.0 <= float(t.phase.min()) and float(t.phase.max()) <= torch.pi
    assert float(t.xs.abs().max()) <= 5.0
    want = t.amp[:, None, None] * torch.sin(t.xs - t.phase[:, None, None])
    torch.testing.assert_close(t.ys, want)


def test_first_order_loop_equals_first_order_func():
    torch.manual_seed(0)
    net = maml.sine_net().double()
    params = {n: p.detach() for n, p in net.named_parameters()}
    tasks = maml.sample_sine_tasks(3, 10, 10, torch.Generator().manual_seed(1), dtype=torch.float64)
    a = maml.meta_grad_loop(net, params, tasks, 0.01, steps=2, first_order=True)
    b = maml.meta_grad_func(net, params, tasks, 0.01, steps=2, first_order=True)
    for n in a:
        torch.testing.assert_close(a[n], b[n])


def test_zero_alpha_is_plain_query_gradient():
    torch.manual_seed(0)
    net = maml.sine_net().double()
    params = {n: p.detach() for n, p in net.named_parameters()}
    tasks = maml.sample_sine_tasks(2, 10, 10, torch.Generator().manual_seed(2), dtype=torch.float64)
    g = maml.meta_grad_func(net, params, tasks, 0.0)
    leaves = {n: p.clone().requires_grad_() for n, p in params.items()}
    out = torch.func.functional_call(net, leaves, (tasks.xq,))  # (T, Q, 1): the net is batch-agnostic
    want = torch.autograd.grad(((out - tasks.yq) ** 2).mean(), list(leaves.values()))
    for n, w in zip(g, want, strict=True):
        torch.testing.assert_close(g[n], w)
