"""CartPole-v1 environments, episode bookkeeping, small networks and the env-steps/s probe.

gymnasium's CartPole-v1: observation (4,) float32, 2 actions, reward 1 per step, truncated at
500 steps, ``reward_threshold`` 475 (the "solved" bar: mean return over 100 consecutive
episodes). A uniformly random policy averages about 22.

Vector environments use ``AutoresetMode.SAME_STEP``: an env that ends returns its reset
observation at once and the true final observation in ``info["final_obs"]``, which
:func:`vec_step` puts back, so a truncated step can be bootstrapped from the state it reached.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

ENV_ID = "CartPole-v1"
SOLVED = 475.0  # gymnasium's CartPole-v1 spec.reward_threshold
RANDOM_RETURN = 22.0  # about the mean return of a uniformly random CartPole policy


def make_env() -> gym.Env:
    return gym.make(ENV_ID)


def make_vec(n: int) -> gym.vector.SyncVectorEnv:
    """n CartPole-v1 envs stepped in one process, autoreset on the same step."""
    return gym.vector.SyncVectorEnv([make_env] * n, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def vec_step(envs: gym.vector.VectorEnv, actions: np.ndarray):
    """Step; returns (obs for the next action (N, 4), state reached (N, 4), reward (N,),
    terminated (N,) bool, truncated (N,) bool). The state reached is the final observation
    for envs that ended (their ``obs`` is already the next episode's first)."""
    obs, rew, term, trunc, info = envs.step(actions)
    reached = obs.copy()
    if "_final_obs" in info:
        for i in np.flatnonzero(info["_final_obs"]):
            reached[i] = info["final_obs"][i]
    return obs, reached, rew, term, trunc


@dataclasses.dataclass
class RunLog:
    """Episodes finished during training: return, env steps and wall seconds at each end."""

    returns: list[float] = dataclasses.field(default_factory=list)
    end_steps: list[int] = dataclasses.field(default_factory=list)
    end_time_s: list[float] = dataclasses.field(default_factory=list)
    env_steps: int = 0
    wall_s: float = 0.0
    eval_returns: list[float] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()

    def episode(self, ret: float) -> None:
        self.returns.append(float(ret))
        self.end_steps.append(self.env_steps)
        self.end_time_s.append(time.perf_counter() - self._t0)

    def done(self) -> RunLog:
        self.wall_s = time.perf_counter() - self._t0
        return self

    def mean_last(self, k: int = 100) -> float:
        """Mean return of the last k finished episodes (0 when none)."""
        tail = self.returns[-k:]
        return float(np.mean(tail)) if tail else 0.0

    def solved_at(self, threshold: float = SOLVED, window: int = 100) -> tuple[int, float] | None:
        """(env steps, seconds) when the mean over the last ``window`` episodes first reached
        ``threshold``; None if never."""
        r = np.asarray(self.returns)
        for i in range(window - 1, len(r)):
            if r[i - window + 1 : i + 1].mean() >= threshold:
                return self.end_steps[i], self.end_time_s[i]
        return None


class EpisodeReturns:
    """Running per-env returns of a vector env; finished ones go to a :class:`RunLog`."""

    def __init__(self, n: int, log: RunLog):
        self.acc, self.log = np.zeros(n), log

    def add(self, rew: np.ndarray, ended: np.ndarray) -> None:
        self.acc += rew
        self.log.env_steps += len(rew)
        for i in np.flatnonzero(ended):
            self.log.episode(self.acc[i])
            self.acc[i] = 0.0


def mlp(n_in: int, hidden: int, n_out: int, out_gain: float = 1.0) -> nn.Sequential:
    """n_in -> hidden -> hidden -> n_out with tanh, orthogonal init (gain sqrt 2, output
    ``out_gain``), zero biases: CleanRL's ``layer_init`` (0.01 for a policy head keeps the
    first policy near uniform, 1.0 for a value head)."""
    net = nn.Sequential(
        nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)
    )
    for i, layer in enumerate(m for m in net if isinstance(m, nn.Linear)):
        nn.init.orthogonal_(layer.weight, out_gain if i == 2 else 2**0.5)
        nn.init.zeros_(layer.bias)
    return net


@torch.no_grad()
def evaluate(act: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` CartPole episodes under ``act`` (obs (1, 4) -> action (1,)),
    env seeded ``seed``, ``seed + 1``, ..."""
    env, out = make_env(), []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        total, end = 0.0, False
        while not end:
            a = int(act(torch.as_tensor(obs)[None])[0])
            obs, r, term, trunc, _ = env.step(a)
            total, end = total + float(r), term or trunc
        out.append(total)
    env.close()
    return out


def env_steps_fn(n_envs: int, steps: int, policy: nn.Module, seed: int = 0) -> Callable[[], None]:
    """A closure stepping ``steps`` env steps in total with ``policy`` choosing the actions.

    ``n_envs == 1``: one ``gym.Env``, one policy forward per step; ``n_envs > 1``: a
    :func:`make_vec` of n envs, one batched forward per n steps (``steps // n_envs`` calls).
    Both variants do the same work in env steps, so their times compare.
    """
    if n_envs == 1:
        env = make_env()
        state = {"obs": env.reset(seed=seed)[0]}

        @torch.no_grad()
        def single() -> None:
            obs = state["obs"]
            for _ in range(steps):
                a = int(policy(torch.as_tensor(obs)[None]).argmax(-1))
                obs, _, term, trunc, _ = env.step(a)
                if term or trunc:
                    obs, _ = env.reset()
            state["obs"] = obs

        return single
    envs = make_vec(n_envs)
    vstate = {"obs": envs.reset(seed=seed)[0]}

    @torch.no_grad()
    def vector() -> None:
        obs = vstate["obs"]
        for _ in range(steps // n_envs):
            a = policy(torch.as_tensor(obs)).argmax(-1).numpy()
            obs = envs.step(a)[0]
        vstate["obs"] = obs

    return vector
