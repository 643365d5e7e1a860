"""Returns, TD and n-step targets, and GAE, with gymnasium's terminated / truncated distinction.

Conventions (every function): time runs along dim 0; an optional trailing env dim N follows,
so ``rewards`` is (T,) or (T, N), float32/float64. Step t is the transition
s_t --a_t--> (r_t, s_{t+1}). Flags are bool tensors of the same shape:

* ``terminated[t]``: s_{t+1} is terminal (the pole fell): its value is 0, never bootstrapped;
* ``truncated[t]``: the episode was cut by a time limit at s_{t+1} (CartPole-v1: 500 steps):
  s_{t+1} is *not* terminal, so its value is bootstrapped from ``next_values[t]``;
* ``next_values[t]`` is V(s_{t+1}) of the state actually reached, i.e. of the final
  observation at an episode end (gymnasium's ``info["final_obs"]``), not of the reset state.

An episode boundary (terminated or truncated) stops every sum from running into the next
episode. Sources: Sutton & Barto, *Reinforcement Learning: An Introduction*, 2nd ed. 2018
(returns eq. 3.9, n-step returns eq. 7.1, TD(0) eq. 6.2); Schulman et al., "High-Dimensional
Continuous Control Using Generalized Advantage Estimation", ICLR 2016 (GAE eqs. 11-16);
gymnasium's "Handling Time Limits" page (terminated vs truncated).
"""

from __future__ import annotations

import torch


def _check(rewards: torch.Tensor, *flags: torch.Tensor) -> None:
    for f in flags:
        if f.shape != rewards.shape:
            raise ValueError(f"flags of shape {tuple(f.shape)} do not match rewards {tuple(rewards.shape)}")
    if rewards.dim() not in (1, 2):
        raise ValueError(f"rewards must be (T,) or (T, N), got shape {tuple(rewards.shape)}")


def returns_to_go(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float, bootstrap: torch.Tensor | None = None
) -> torch.Tensor:
    """Discounted returns-to-go G_t = r_t + gamma (1 - done_t) G_{t+1}, restarting at episode ends.

    Args:
        rewards: (T,) or (T, N) float.
        dones: bool like ``rewards``: the episode ended after step t (terminated or truncated;
            REINFORCE's Monte Carlo return does not bootstrap either way).
        gamma: discount in [0, 1].
        bootstrap: value added after the last step, shape of ``rewards[0]`` (default 0).

    Returns:
        G (same shape and dtype as ``rewards``). Sutton & Barto 2018, eq. 3.9.
    """
    _check(rewards, dones)
    out = torch.empty_like(rewards)
    g = torch.zeros_like(rewards[0]) if bootstrap is None else bootstrap.to(rewards.dtype)
    keep = (~dones).to(rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        g = rewards[t] + gamma * keep[t] * g
        out[t] = g
    return out


def td_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """One-step TD targets r_t + gamma V(s_{t+1}) (1 - terminated_t).

    A truncated step still bootstraps (its next state is not terminal): only ``terminated``
    zeroes the bootstrap. DQN's target is this with next_values = max_a Q_target(s', a)
    (Mnih et al. 2015, Algorithm 1). Shapes: (T,) or (T, N), or any matching shapes.
    """
    return rewards + gamma * next_values * (~terminated).to(rewards.dtype)


def n_step_targets(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    n: int,
) -> torch.Tensor:
    """n-step targets G_t^(n) = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - terminated) V(s_{t+m}).

    m = min(n, steps to the episode end including it, steps to the end of the rollout). At a
    truncated end or the rollout's end, the bootstrap is ``next_values`` of that last step; at
    a terminated end it is 0. n = 1 gives :func:`td_targets`. Sutton & Barto 2018, eq. 7.1.

    Args:
        rewards, next_values, terminated, truncated: (T,) or (T, N) (see the module docstring).
        gamma: discount; n: horizon >= 1.

    Returns:
        (T,) or (T, N) like ``rewards``.
    """
    if n < 1:
        raise ValueError(f"n-step horizon must be >= 1, got {n}")
    _check(rewards, next_values, terminated, truncated)
    T = rewards.shape[0]
    ends = terminated | truncated
    live = (~terminated).to(rewards.dtype)
    out = torch.empty_like(rewards)
    for t in range(T):
        g = torch.zeros_like(rewards[0])
        disc = torch.ones_like(rewards[0])
        open_ = torch.ones_like(rewards[0], dtype=torch.bool)  # still inside the episode of step t
        for k in range(min(n, T - t)):
            i = t + k
            g = g + open_ * disc * rewards[i]
            disc = disc * gamma
            last = open_ & (ends[i] | (k == min(n, T - t) - 1))  # the sum stops after step i
            g = g + last * disc * live[i] * next_values[i]
            open_ = open_ & ~last
        out[t] = g
    return out


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16) and the value targets.

    delta_t = r_t + gamma V(s_{t+1}) (1 - terminated_t) - V(s_t);
    A_t = delta_t + gamma lam (1 - end_t) A_{t+1}, end = terminated | truncated.

    lam = 0 gives the TD error, lam = 1 the Monte Carlo advantage (bootstrapped at truncation
    and at the rollout's end).

    Args:
        rewards, values, next_values, terminated, truncated: (T,) or (T, N); ``values[t]`` is
            V(s_t), ``next_values[t]`` V(s_{t+1}) of the state reached (final obs at an end).

    Returns:
        (advantages, returns = advantages + values), each like ``rewards``.
    """
    _check(rewards, values, next_values, terminated, truncated)
    delta = td_targets(rewards, next_values, terminated, gamma) - values
    carry = (~(terminated | truncated)).to(rewards.dtype)
    adv = torch.empty_like(rewards)
    a = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        a = delta[t] + gamma * lam * carry[t] * a
        adv[t] = a
    return adv, adv + values
