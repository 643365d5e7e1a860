"""Wrong MAML pieces: the mutants of advanced.maml (each one a plausible mistake).

Each has the signature of the :mod:`kernels.meta.maml` function it replaces (``meta_grad_loop``
or ``adapt``); the task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import dataclasses

from kernels.meta import maml


def first_order_loop(model, params, tasks, alpha, steps=1, first_order=False):
    """WRONG where second order is claimed: the inner gradient detached (first-order MAML)."""
    return maml.meta_grad_loop(model, params, tasks, alpha, steps, first_order=True)


def outer_on_support(model, params, tasks, alpha, steps=1, first_order=False):
    """WRONG: the outer loss on the support set the inner step adapted to, not the query set."""
    swapped = dataclasses.replace(tasks, xq=tasks.xs, yq=tasks.ys)
    return maml.meta_grad_loop(model, params, swapped, alpha, steps, first_order)


def ascending(model, params, xs, ys, alpha, steps=1, first_order=False):
    """WRONG: theta' = theta + alpha * grad: the inner step climbs the support loss."""
    return maml.adapt(model, params, xs, ys, -alpha, steps, first_order)
