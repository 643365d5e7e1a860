"""MAML on sinusoid regression: the task distribution, the network and the meta-gradient three ways.

Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
ICML 2017 (arXiv:1703.03400), section 5.1: each task is y = A sin(x - phi) with amplitude
A ~ U[0.1, 5.0], phase phi ~ U[0, pi] and inputs x ~ U[-5, 5]; K = 10 support points, a
network with 2 hidden layers of 40 ReLU units, one inner gradient step of size alpha = 0.01
on the MSE, meta-batch 25 tasks, Adam as the meta-optimiser.

For one task with support (xs, ys) and query (xq, yq), MAML's objective is

    L(theta) = MSE(f(xq; theta'), yq),   theta' = theta - alpha * grad_theta MSE(f(xs; theta), ys),

and its gradient runs through theta', so it contains the Hessian term
-alpha * H_support(theta) @ grad_theta' MSE_query. First-order MAML (section 5.2) drops it by
treating the inner gradient as a constant (a ``detach``).

Three ways to the meta-gradient of the mean L over a batch of tasks:

* :func:`meta_grad_func`: ``torch.func.grad`` of a ``vmap`` over tasks of the inner step (itself a
  ``torch.func.grad``): one batched program, second order because ``grad`` composes.
* :func:`meta_grad_loop`: a Python loop over tasks with ``torch.autograd.grad(create_graph=True)``
  for the inner step, the way MAML is usually written before torch.func.
* :func:`meta_loss` + finite differences (float64, in the task's check).

Shapes: a task batch holds xs, ys (T, K, 1) and xq, yq (T, Q, 1), float; parameters are a dict
name -> tensor as ``dict(model.named_parameters())`` gives (the 2x40 net has 1,761 values).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


@dataclasses.dataclass(frozen=True)
class SineTasks:
    """A batch of sinusoid tasks: support and query sets, amplitudes and phases.

    Attributes: xs, ys (T, K, 1); xq, yq (T, Q, 1); amp, phase (T,). Same dtype and device.
    """

    xs: torch.Tensor
    ys: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor


def sample_sine_tasks(
    n_tasks: int,
    k: int,
    q: int,
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> SineTasks:
    """Draw ``n_tasks`` tasks of Finn et al.'s sinusoid benchmark (section 5.1).

    A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5]; y = A sin(x - phi). Draws happen on the CPU
    ``generator`` (same tasks on every machine), then move to ``device``.
    Raises ValueError when n_tasks, k or q is below 1.
    """
    if min(n_tasks, k, q) < 1:
        raise ValueError(f"sample_sine_tasks: n_tasks, k and q must be >= 1, got {n_tasks}, {k}, {q}")
    amp = 0.1 + 4.9 * torch.rand(n_tasks, generator=generator, dtype=torch.float64)  # (T,)
    phase = math.pi * torch.rand(n_tasks, generator=generator, dtype=torch.float64)  # (T,)
    x = -5.0 + 10.0 * torch.rand(n_tasks, k + q, 1, generator=generator, dtype=torch.float64)  # (T, K+Q, 1)
    y = amp[:, None, None] * torch.sin(x - phase[:, None, None])  # (T, K+Q, 1)
    to = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731 - one line
    return SineTasks(to(x[:, :k]), to(y[:, :k]), to(x[:, k:]), to(y[:, k:]), to(amp), to(phase))


def sine_net(hidden: int = 40) -> nn.Module:
    """Finn et al.'s regressor: 1 -> hidden -> hidden -> 1 with ReLU (input (N, 1), output (N, 1))."""
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


Params = dict[str, torch.Tensor]


def _mse(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(functional_call(model, params, (x,)), y)


def adapt(model: nn.Module, params: Params, xs: torch.Tensor, ys: torch.Tensor, alpha: float, steps: int = 1,
          first_order: bool = False) -> Params:  # fmt: skip
    """theta' after ``steps`` SGD steps of size ``alpha`` on one task's support (xs, ys (K, 1)).

    Written with ``torch.func.grad``, so it runs under ``vmap`` and under an outer ``grad``;
    ``first_order`` detaches each inner gradient (first-order MAML).
    """
    for _ in range(steps):
        g = grad(lambda p: _mse(model, p, xs, ys))(params)
        params = {n: p - alpha * (g[n].detach() if first_order else g[n]) for n, p in params.items()}
    return params


def task_loss(model: nn.Module, params: Params, xs, ys, xq, yq, alpha: float, steps: int = 1,
              first_order: bool = False) -> torch.Tensor:  # fmt: skip
    """One task's MAML loss: query MSE after adapting on the support (tensors (K, 1), (Q, 1))."""
    return _mse(model, adapt(model, params, xs, ys, alpha, steps, first_order), xq, yq)


def meta_loss(model: nn.Module, params: Params, tasks: SineTasks, alpha: float, steps: int = 1,
              first_order: bool = False) -> torch.Tensor:  # fmt: skip
    """Mean over the T tasks of :func:`task_loss`, the tasks batched with ``vmap``."""
    per_task = vmap(lambda xs, ys, xq, yq: task_loss(model, params, xs, ys, xq, yq, alpha, steps, first_order))
    return per_task(tasks.xs, tasks.ys, tasks.xq, tasks.yq).mean()  # (T,) -> ()


def meta_grad_func(model: nn.Module, params: Params, tasks: SineTasks, alpha: float, steps: int = 1,
                   first_order: bool = False) -> Params:  # fmt: skip
    """d meta_loss / d theta with ``torch.func.grad`` over the vmapped tasks (a dict like ``params``)."""
    return grad(lambda p: meta_loss(model, p, tasks, alpha, steps, first_order))(params)


def meta_grad_loop(model: nn.Module, params: Params, tasks: SineTasks, alpha: float, steps: int = 1,
                   first_order: bool = False) -> Params:  # fmt: skip
    """The same gradient with ``torch.autograd``: a Python loop over tasks, the inner gradient
    taken with ``create_graph=True`` so the outer backward sees the Hessian term (``first_order``
    takes it without the graph: the inner gradient is then a constant)."""
    leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
    total = 0.0
    for t in range(tasks.xs.shape[0]):
        fast = leaves
        for _ in range(steps):
            loss = _mse(model, fast, tasks.xs[t], tasks.ys[t])
            g = torch.autograd.grad(loss, list(fast.values()), create_graph=not first_order)
            fast = {n: p - alpha * gi for (n, p), gi in zip(fast.items(), g, strict=True)}
        total = total + _mse(model, fast, tasks.xq[t], tasks.yq[t])
    grads = torch.autograd.grad(total / tasks.xs.shape[0], list(leaves.values()))
    return dict(zip(leaves, grads, strict=True))


def query_mse(
    model: nn.Module, params: Params, tasks: SineTasks, alpha: float, steps: int, adapt_fn: Callable = adapt
) -> torch.Tensor:
    """Per-task query MSE (T,) after ``steps`` inner steps (0: the meta-learned initialisation itself).

    ``adapt_fn`` (``adapt``'s signature, vmappable) takes the inner steps; a task passes its own to
    have it checked.
    """
    per_task = vmap(lambda xs, ys, xq, yq: _mse(model, adapt_fn(model, params, xs, ys, alpha, steps), xq, yq))
    return per_task(tasks.xs, tasks.ys, tasks.xq, tasks.yq)


def meta_learner(lr: float, device: torch.device | str = "cpu") -> tuple[nn.Module, Params, torch.optim.Adam]:
    """(a fresh :func:`sine_net` on ``device``, its parameters as leaf copies that require grad, Adam
    over those leaves at ``lr``): what :func:`meta_step` updates. Seed the global RNG first."""
    net = sine_net().to(device)
    params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
    return net, params, torch.optim.Adam(params.values(), lr=lr)


def meta_step(
    model: nn.Module,
    params: Params,
    opt: torch.optim.Optimizer,
    tasks: SineTasks,
    alpha: float,
    grad_fn: Callable = meta_grad_func,
    first_order: bool = False,
) -> None:
    """One meta-optimiser step: ``grad_fn``'s meta-gradient on ``tasks`` into each leaf's ``.grad``
    (``params`` from :func:`meta_learner`, the leaves ``opt`` updates), then ``opt.step()``."""
    g = grad_fn(model, {n: p.detach() for n, p in params.items()}, tasks, alpha, first_order=first_order)
    for n, p in params.items():
        p.grad = g[n]
    opt.step()


def float64_problem(k: int, q: int, seed: int, gen: torch.Generator, n_tasks: int = 5):
    """(a :func:`sine_net` seeded with ``seed`` in float64, its parameters detached, ``n_tasks``
    float64 tasks of ``k`` support and ``q`` query points from ``gen``): where meta-gradients are
    compared with each other and with finite differences."""
    torch.manual_seed(seed)
    net = sine_net().double()
    params = {n: p.detach() for n, p in net.named_parameters()}
    return net, params, sample_sine_tasks(n_tasks, k, q, gen, dtype=torch.float64)


def meta_train(
    cfg,
    gen: torch.Generator,
    held_gen: torch.Generator,
    *,
    adapt_fn: Callable = adapt,
    every: int = 50,
    inner: tuple[int, ...] = (0, 1, 10),
    device: torch.device | str = "cpu",
) -> list[list[float]]:
    """Meta-train a fresh :func:`meta_learner` with :func:`meta_grad_func`; the mean held-out query
    MSE after each number of ``inner`` steps (taken by ``adapt_fn``), every ``every`` meta-steps and
    at the end: one list per entry of ``inner``.

    ``cfg`` has k, q, meta_batch, alpha, meta_lr, meta_steps and eval_tasks (advanced.maml's
    ``MAMLConfig``); ``gen`` draws the meta-training tasks, ``held_gen`` the ``cfg.eval_tasks``
    held-out ones (100 query points each). Seed the global RNG first (the initial weights).
    """
    net, params, opt = meta_learner(cfg.meta_lr, device)
    held = sample_sine_tasks(cfg.eval_tasks, cfg.k, 100, held_gen, device=device)
    curves: list[list[float]] = [[] for _ in inner]
    for step in range(cfg.meta_steps + 1):
        if step % every == 0 or step == cfg.meta_steps:
            frozen = {n: p.detach() for n, p in params.items()}
            for out, s in zip(curves, inner, strict=True):
                out.append(float(query_mse(net, frozen, held, cfg.alpha, s, adapt_fn).mean()))
        if step < cfg.meta_steps:
            tasks = sample_sine_tasks(cfg.meta_batch, cfg.k, cfg.q, gen, device=device)
            meta_step(net, params, opt, tasks, cfg.alpha)
    return curves


def grad_vs_fd(loss: Callable[[Params], torch.Tensor], params: Params, grads: Params, gen: torch.Generator, n: int = 3):
    """{"direction i": (grads . v, :func:`directional_fd` of ``loss`` along v)} for ``n`` random normal
    directions v drawn from ``gen`` (dicts like ``params``): equal pairs when ``grads`` is ``loss``'s
    gradient."""
    pairs = {}
    for i in range(n):
        v = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in params.items()}
        pairs[f"direction {i}"] = (sum((grads[k] * v[k]).sum() for k in grads), directional_fd(loss, params, v))
    return pairs


def relative_gap(a: Params, b: Params) -> float:
    """||a - b|| / ||b|| over all entries of two parameter dicts with the same keys and shapes."""
    gap = sum(float((a[k] - b[k]).pow(2).sum()) for k in b)
    return math.sqrt(gap / sum(float(b[k].pow(2).sum()) for k in b))


def directional_fd(loss: Callable[[Params], torch.Tensor], params: Params, v: Params, eps: float = 1e-6):
    """(loss(theta + eps v) - loss(theta - eps v)) / (2 eps): the central finite difference of ``loss``
    along direction ``v`` (a dict like ``params``), which equals grad . v up to O(eps^2) (use float64)."""
    shifted = lambda s: loss({n: p + s * v[n] for n, p in params.items()})  # noqa: E731 - one line
    return (shifted(eps) - shifted(-eps)) / (2 * eps)
