"""kernels.meta.maml helpers: the finite-difference probe and one meta-optimiser step (the gradients: tests/tasks)."""

import torch

from kernels.meta import maml


def test_directional_fd_is_the_gradient_along_v():
    params = {"a": torch.tensor([1.0, -2.0], dtype=torch.float64), "b": torch.tensor(3.0, dtype=torch.float64)}
    v = {"a": torch.tensor([0.5, 1.0], dtype=torch.float64), "b": torch.tensor(-1.0, dtype=torch.float64)}
    loss = lambda p: (p["a"] ** 2).sum() + p["b"] ** 3
    want = 2 * (1.0 * 0.5 + -2.0 * 1.0) + 3 * 3.0**2 * -1.0
    assert abs(float(maml.directional_fd(loss, params, v)) - want) < 1e-6


def test_meta_step_moves_the_leaves_the_optimizer_holds():
    torch.manual_seed(0)
    net, params, opt = maml.meta_learner(1e-2)
    before = {n: p.detach().clone() for n, p in params.items()}
    tasks = maml.sample_sine_tasks(4, 5, 5, torch.Generator().manual_seed(0))
    maml.meta_step(net, params, opt, tasks, 0.01)
    assert all(params[n].grad is not None and not torch.equal(params[n], before[n]) for n in params)
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())  # the module's own weights stay
