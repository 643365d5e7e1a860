"""A replay ring buffer and epsilon schedules for DQN (Mnih et al., "Human-level control
through deep reinforcement learning", Nature 518, 2015: replay memory of the last N
transitions sampled uniformly, epsilon annealed linearly from 1.0 to 0.1).
"""

from __future__ import annotations

import math

import torch


class ReplayBuffer:
    """The last ``capacity`` transitions (s, a, r, s', terminated) in preallocated tensors.

    Writes go round a ring: once full, each new transition overwrites the oldest. ``s'`` is
    the state actually reached (the final observation at an episode end), so a truncated
    transition can be bootstrapped; ``terminated`` says whether it may not.

    Args:
        capacity: transitions kept (>= 1).
        obs_dim: features per observation (CartPole: 4).
        device: where the tensors live; observations float32, actions int64, rewards
            float32, terminated bool.
    """

    def __init__(self, capacity: int, obs_dim: int, device: str | torch.device = "cpu"):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim, device=device)  # (C, D)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)  # (C, D)
        self.actions = torch.zeros(capacity, dtype=torch.long, device=device)  # (C,)
        self.rewards = torch.zeros(capacity, device=device)  # (C,)
        self.terminated = torch.zeros(capacity, dtype=torch.bool, device=device)  # (C,)
        self.pos = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Append a batch of B transitions: obs/next_obs (B, D), action/reward/terminated (B,)."""
        obs = torch.as_tensor(obs, dtype=torch.float32).reshape(-1, self.obs.shape[1])  # (B, D)
        b = obs.shape[0]
        idx = (self.pos + torch.arange(b)) % self.capacity  # wraps: the oldest slots go first
        self.obs[idx] = obs.to(self.obs.device)
        self.next_obs[idx] = torch.as_tensor(next_obs, dtype=torch.float32).reshape(b, -1).to(self.obs.device)
        self.actions[idx] = torch.as_tensor(action).reshape(b).long().to(self.obs.device)
        self.rewards[idx] = torch.as_tensor(reward, dtype=torch.float32).reshape(b).to(self.obs.device)
        self.terminated[idx] = torch.as_tensor(terminated).reshape(b).bool().to(self.obs.device)
        self.pos = (self.pos + b) % self.capacity
        self.size = min(self.size + b, self.capacity)

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``batch`` transitions drawn uniformly with replacement among those stored.

        Reproducible: the same generator state gives the same indices. Returns a dict of
        ``obs`` (B, D), ``actions`` (B,), ``rewards`` (B,), ``next_obs`` (B, D), ``terminated``
        (B,) and ``index`` (B,) int64 (the slots drawn).

        Raises:
            ValueError: the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer: add transitions first")
        idx = torch.randint(0, self.size, (batch,), generator=generator)
        i = idx.to(self.obs.device)
        return {
            "obs": self.obs[i],
            "actions": self.actions[i],
            "rewards": self.rewards[i],
            "next_obs": self.next_obs[i],
            "terminated": self.terminated[i],
            "index": idx,
        }


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Epsilon falling linearly from ``start`` to ``end`` over ``duration`` steps, then flat.

    Mnih et al. 2015 (1.0 -> 0.1 over the first million frames); CleanRL's ``linear_schedule``.
    """
    if duration <= 0:
        return end
    return start + (end - start) * min(1.0, step / duration)


def exponential_epsilon(step: int, start: float, end: float, decay_steps: float) -> float:
    """Epsilon = end + (start - end) exp(-step / decay_steps): a smooth alternative."""
    return end + (start - end) * math.exp(-step / decay_steps)
