"""What a CartPole task's config holds besides its agent, the env-steps probe it times, and
the task base (:class:`CartPoleTask`) that carries its bench.

The RL tasks check that a short training run beats a random policy across seeds
(:func:`kernels.rl.record.expect_learns`) and time env steps/s with the policy acting on one
env against a vector env (variants ``single_env`` and ``vector_env``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from harness.contract import Prepared
from harness.task import TrainingRun
from kernels.rl.envs import env_steps_fn, mlp
from kernels.rl.record import METRICS, record_run

#: the last row of every CartPole task's table of published figures: gymnasium's solved threshold
SOLVED_ROW = ("gymnasium CartPole-v1 reward_threshold", "", "475")


@dataclasses.dataclass(frozen=True)
class RLRun:
    """Training budget, seeds and the env-steps probe."""

    agent: Any
    """the agent's hyperparameters and budget (a ``kernels.rl.agents`` config; ``total_steps`` env steps)"""
    seeds: int = 2
    """training runs (check: the mean of their greedy returns must beat random)"""
    min_return: float = 60.0
    """check: mean greedy return over seeds must reach this (random: about 22)"""
    probe_steps: int = 512
    """env steps per timed call (single and vector)"""
    n_envs: int = 8
    """envs of the vectorised probe"""


def env_steps_prepared(ctx: Any, impl: str, run: RLRun, hidden: int = 64) -> Prepared:
    """``run.probe_steps`` env steps with a fresh seeded MLP (4 -> hidden -> hidden -> 2) choosing the
    actions on one env (``impl == "single_env"``, a forward per step) or on ``run.n_envs`` (one
    batched forward per n steps): the timed call of both variants, in env steps."""
    torch.manual_seed(ctx.rng_seed)
    policy = mlp(4, hidden, 2)
    fn = env_steps_fn(1 if impl == "single_env" else run.n_envs, run.probe_steps, policy, ctx.rng_seed)
    return Prepared(fn=fn, items=run.probe_steps, item_unit="env_steps")


class CartPoleTask(TrainingRun):
    """A task base for the CartPole drills (gymnasium's CartPole-v1): the env-steps probe both
    variants time, and a bench that trains once and records the run (:func:`record_run`).

    A task sets ``series`` (the agent's name on the return curve) and ``anchors`` ((source, env
    steps, return) rows of published figures; the bench adds :data:`SOLVED_ROW`) and defines
    ``train_agent(agent, seed) -> (log, act)`` (a ``kernels.rl.agents.train_*`` with the task's
    pieces); its config is an :class:`RLRun` whose agent has ``hidden`` (the probe's width), and
    its check ends with :func:`kernels.rl.record.expect_learns`.
    """

    requires = ("gymnasium",)
    variants = ("single_env", "vector_env")
    time_limit_s = {"check": 240.0, "bench": 900.0}
    metrics = METRICS
    series = ""
    anchors: tuple[tuple[str, Any, str], ...] = ()

    def train_agent(self, agent: Any, seed: int) -> tuple[Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} defines no train_agent(agent, seed)")

    def prepare(self, ctx: Any, impl: str, config: RLRun) -> Prepared:
        return env_steps_prepared(ctx, impl, config, hidden=config.agent.hidden)

    def bench(self, ctx: Any) -> None:
        log, act = self.train_agent(ctx.configs[0].agent, ctx.rng_seed)
        record_run(ctx, log, act, self.series, [*self.anchors, SOLVED_ROW])
        super().bench(ctx)
