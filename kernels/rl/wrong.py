"""Plausible wrong versions of the RL pieces, each beside the right one it mirrors.

research.ppo, research.dqn and advanced.actor_critic declare them as mutants: their checks must reject every one.
Signatures and shapes are those of :mod:`kernels.rl.ppo`, :mod:`kernels.rl.returns`,
:mod:`kernels.rl.replay` and :mod:`kernels.rl.target`.
"""

from __future__ import annotations

import torch

from kernels.rl.replay import ReplayBuffer
from kernels.rl.returns import gae, n_step_targets
from kernels.rl.target import TargetSync

# -- PPO (research.ppo) ------------------------------------------------------------------------


def optimistic_surrogate(new: torch.Tensor, old: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """max instead of min of the two surrogate terms: the optimistic one, so the clip never binds. (B,) -> (B,)."""
    ratio = (new - old).exp()
    return torch.max(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)


def gae_through_termination(r, v, nv, term, trunc, gamma=0.99, lam=0.95):
    """GAE that treats every end as a truncation: bootstraps V(s') after the pole fell."""
    return gae(r, v, nv, torch.zeros_like(term), term | trunc, gamma, lam)


def gae_no_reset(r, v, nv, term, trunc, gamma=0.99, lam=0.95):
    """GAE that ignores truncations: the advantage sum runs on into the next episode."""
    return gae(r, v, nv, term, torch.zeros_like(trunc), gamma, lam)


def optimistic_value_loss(v, v_old, ret, clip=None):
    """Clipped value loss with min instead of max: the optimistic term. (B,) -> scalar."""
    vc = v_old + (v - v_old).clamp(-clip, clip)
    return 0.5 * torch.min((v - ret) ** 2, (vc - ret) ** 2).mean()


# -- DQN (research.dqn) ------------------------------------------------------------------------


class NeverSyncs(TargetSync):
    """The target network keeps its initial weights."""

    def __call__(self, step, target, online):
        return False


class KeepsOldest(ReplayBuffer):
    """Stops writing once full: the buffer freezes on the first, most random transitions."""

    def add(self, obs, action, reward, next_obs, terminated):
        if self.size < self.capacity:
            super().add(obs, action, reward, next_obs, terminated)


class UnseededSampling(ReplayBuffer):
    """Sampling ignores the generator it is given."""

    def sample(self, batch, generator):
        return super().sample(batch, torch.Generator().manual_seed(int(torch.randint(1 << 30, ()))))


class PolyakBackwards(TargetSync):
    """Polyak the wrong way round: theta' <- (1 - tau) theta + tau theta'."""

    def __call__(self, step, target, online):
        if self.tau == 1.0:
            return super().__call__(step, target, online)
        if step % self.every == 0:
            with torch.no_grad():
                for t, o in zip(target.parameters(), online.parameters(), strict=True):
                    t.lerp_(o, 1 - self.tau)  # keeps tau of the target instead of 1 - tau
        return step % self.every == 0


def td_through_termination(r: torch.Tensor, q_next: torch.Tensor, term: torch.Tensor, gamma: float) -> torch.Tensor:
    """r + gamma max Q(s') also after the pole fell (the (1 - terminated) factor is missing). (B,) -> (B,)."""
    return r + gamma * q_next


# -- A2C's n-step targets (advanced.actor_critic) ----------------------------------------------


def n_step_through_termination(r, nv, term, trunc, gamma, n):
    """n-step targets that treat every end as a truncation: gamma V(s') is added after the pole fell."""
    return n_step_targets(r, nv, torch.zeros_like(term), term | trunc, gamma, n)


def n_step_truncation_as_termination(r, nv, term, trunc, gamma, n):
    """n-step targets that treat the time limit as a fall: no bootstrap after a truncation."""
    return n_step_targets(r, nv, term | trunc, torch.zeros_like(trunc), gamma, n)


def n_step_no_reset(r, nv, term, trunc, gamma, n):
    """n-step targets that ignore every episode end: the sum runs on into the next episode."""
    return n_step_targets(r, nv, torch.zeros_like(term), torch.zeros_like(trunc), gamma, n)
