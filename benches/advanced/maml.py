"""8.09 Meta-learning (MAML).

Compared: the MAML meta-gradient (Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast
Adaptation of Deep Networks", ICML 2017, arXiv:1703.03400) on the paper's sinusoids (section 5.1 in
``kernels.meta.maml``: K = 10 support points, one inner SGD step of alpha = 0.01, meta-batch 25)
four ways: ``torch.func`` or a Python loop with ``torch.autograd.grad(create_graph=True)``, each
second order (checked in float64 against finite differences) or first order (FOMAML, section 5.2:
the inner gradient detached). Timed: one meta-step each.

Lesson: MAML learns an initialisation from which one small gradient step fits a new task; its
meta-gradient differentiates through that step (a Hessian-vector product per task). ``torch.func``
writes it as a gradient of a function that takes a gradient, and ``vmap`` makes the per-task loop
one batched program: a network this small makes the loop pay Python and kernel-launch overhead per
task and layer, so vmapping the 25 tasks is the big win. Dropping the second-order term (FOMAML)
saves the double backward but changes the gradient, which Finn et al. found costs little accuracy
(Table 1, MiniImagenet 5-way 1-shot: MAML 48.70 +- 1.84 %, first-order 48.07 +- 1.75 %; Omniglot
5-way 1-shot: MAML 98.7 +- 0.4 %). On sinusoids the meta-learned model adapts from 10 points; a
model pretrained on all tasks jointly learns a near-zero mean one step cannot bend (figure 2).
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.meta import maml, wrong


@dataclasses.dataclass(frozen=True)
class MAMLConfig:
    """Benchmark constants (Finn et al. section 5.1) and the meta-training budget."""

    k: int = 10
    """support points per task (K-shot)"""
    q: int = 10
    """query points per task during meta-training"""
    meta_batch: int = 25
    """tasks per meta-step"""
    alpha: float = 0.01
    """inner SGD step size"""
    meta_lr: float = 1e-3
    """Adam learning rate of the meta-optimiser (the paper's 1e-3; the tiny preset's 100 steps take 5e-3)"""
    meta_steps: int = 1500
    """meta-training steps (the paper: 70,000)"""
    eval_tasks: int = 200
    """held-out tasks for the query MSE (100 query points each)"""
    max_ratio: float = 0.85
    """check: query MSE after one inner step / before must be at most this"""


@task("advanced.maml", seed="8.09", title="meta-learning (MAML)")
class MAML(Comparison):
    __doc__ = __doc__
    variants = ("loop_second_order", "vmap_second_order", "loop_first_order", "vmap_first_order")
    sizes = {"tiny": MAMLConfig(meta_lr=5e-3, meta_steps=100), "cpu": MAMLConfig(meta_steps=1000)}
    metrics = {
        "query_mse_before": "held-out query MSE of the meta-learned initialisation (no inner step)",
        "query_mse_after_1": "held-out query MSE after one inner step on K = 10 points",
        "adapt_ratio": "query MSE after one inner step / before",
    }
    claims = (
        speedup(
            "vmap_second_order",
            over="loop_second_order",
            at_least=3.0,
            text="torch.func vmap over 25 tasks >= 3x the meta-steps/s of the per-task loop (second order)",
        ),
        speedup(
            "vmap_first_order",
            over="vmap_second_order",
            at_least=1.2,
            text="first-order MAML (no double backward) >= 1.2x the meta-steps/s of second order (vmap)",
        ),
        metric("adapt_ratio", "<=", 0.85, text="one inner step on 10 points cuts the held-out query MSE by >= 15 %"),
    )
    meta_grad = staticmethod(maml.meta_grad_loop)
    adapt = staticmethod(maml.adapt)
    mutants = (
        Mutant(
            "first_order",
            "the inner gradient detached (first-order MAML) where second order is claimed",
            {"meta_grad": staticmethod(wrong.first_order_loop)},
            match="meta-gradient",
        ),
        Mutant(
            "outer_loss_on_support",
            "the outer loss on the support set instead of the query set",
            {"meta_grad": staticmethod(wrong.outer_on_support)},
            match="meta-gradient",
        ),
        Mutant(
            "inner_step_ascends",
            "theta' = theta + alpha * grad (the inner step climbs the loss)",
            {"adapt": staticmethod(wrong.ascending)},
            match="adapt",
        ),
    )

    def check(self, ctx):
        cfg = ctx.configs[0]
        net, params, tasks = maml.float64_problem(cfg.k, cfg.q, ctx.rng_seed, ctx.generator())
        got = self.meta_grad(net, params, tasks, cfg.alpha)
        ref = maml.meta_grad_func(net, params, tasks, cfg.alpha)
        for n in ref:
            ctx.assert_close(got[n], ref[n], name="meta-gradient = torch.func's (second order)", where=n)
        loss = lambda p: maml.meta_loss(net, p, tasks, cfg.alpha)  # grad . v against d/de L(theta + e v)
        for where, (dot, fd) in maml.grad_vs_fd(loss, params, got, ctx.generator(1)).items():
            ctx.assert_close(dot, fd, rtol=1e-5, atol=1e-7, name="meta-gradient = finite differences", where=where)
        gap = maml.relative_gap(maml.meta_grad_func(net, params, tasks, cfg.alpha, first_order=True), ref)
        ctx.expect(
            gap > 0.01,
            f"first-order and second-order meta-gradients differ by only {gap:.2%}",
            name="the Hessian term is visible (first order differs)",
        )
        (_, before), (_, after) = self._meta_train(ctx, cfg, every=cfg.meta_steps, inner=(0, 1))  # at 0 and the end
        ctx.expect(
            after / before <= cfg.max_ratio,
            f"adapt: held-out query MSE {before:.3f} -> {after:.3f}, ratio {after / before:.3f} > {cfg.max_ratio}",
            name="adaptation lowers the query MSE",
        )

    def _meta_train(self, ctx, cfg, every=50, inner=(0, 1, 10)):
        """:func:`kernels.meta.maml.meta_train`'s held-out query MSE curves, inner steps through ``self.adapt``."""
        torch.manual_seed(ctx.rng_seed)
        gens = ctx.generator(2), ctx.generator(3)  # the meta-training tasks, the held-out ones
        return maml.meta_train(cfg, *gens, adapt_fn=self.adapt, every=every, inner=inner, device=ctx.device)

    def bench(self, ctx):
        cfg = ctx.configs[0]
        every = max(1, cfg.meta_steps // 15)
        curves = self._meta_train(ctx, cfg, every=every)
        steps = [min(i * every, cfg.meta_steps) for i in range(len(curves[0]))]  # every `every` and the last
        for ys, label in zip(curves, ("no inner step", "1 inner step", "10 inner steps"), strict=True):
            ctx.curve("held-out query MSE", steps, ys, x_label="meta-step", y_label="MSE", series=label)
        ctx.metric("query_mse_before", curves[0][-1])
        ctx.metric("query_mse_after_1", curves[1][-1])
        ctx.metric("adapt_ratio", curves[1][-1] / curves[0][-1])
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        net, params, opt = maml.meta_learner(config.meta_lr, ctx.device)
        tasks = maml.sample_sine_tasks(config.meta_batch, config.k, config.q, ctx.generator(), device=ctx.device)
        way = maml.meta_grad_func if impl.startswith("vmap") else maml.meta_grad_loop
        step = lambda: maml.meta_step(net, params, opt, tasks, config.alpha, way, impl.endswith("first_order"))
        return Prepared(fn=step, items=config.meta_batch, item_unit="tasks")
