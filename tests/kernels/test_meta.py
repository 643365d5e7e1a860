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


def test_grad_vs_fd_pairs_agree_for_the_true_gradient_and_relative_gap():
    params = {"w": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    loss = lambda p: (p["w"] ** 3).sum()  # noqa: E731 - gradient 3 w^2
    pairs = maml.grad_vs_fd(loss, params, {"w": 3 * params["w"] ** 2}, torch.Generator().manual_seed(0), n=2)
    assert list(pairs) == ["direction 0", "direction 1"]
    assert all(abs(float(dot - fd)) < 1e-6 for dot, fd in pairs.values())
    assert abs(maml.relative_gap({"w": torch.tensor([1.0, 1.0])}, {"w": torch.tensor([1.0, 2.0])}) - 5**-0.5) < 1e-7


def test_meta_train_is_seeded_and_returns_one_curve_per_inner_count():
    cfg = type("Cfg", (), dict(k=5, q=5, meta_batch=4, alpha=0.01, meta_lr=1e-3, meta_steps=4, eval_tasks=3))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        gens = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
        runs.append(maml.meta_train(cfg, *gens, every=2, inner=(0, 1)))
    assert runs[0] == runs[1] and [len(c) for c in runs[0]] == [3, 3]  # steps 0, 2 and 4
