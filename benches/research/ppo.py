"""10.06 PPO.

Compared: proximal policy optimisation (Schulman et al., "Proximal Policy Optimization
Algorithms", 2017) on gymnasium's CartPole-v1, the clipped-surrogate variant as CleanRL's
``ppo.py`` writes it (``kernels.rl.agents.train_ppo``): a ``SyncVectorEnv`` of 8 envs, GAE
(gamma 0.98, lambda 0.8: RL Zoo's CartPole-v1 values), advantages normalised per minibatch,
clipped value loss, gradient norm 0.5, learning rate annealed to 0. Timed: env steps/s with the
policy choosing actions on one env (one forward per step) against the vector env (one batched
forward per 8 steps), the same number of env steps each.

The check works GAE by hand on a rollout with a termination (no bootstrap), a truncation
(bootstraps the final observation's value) and an episode boundary the sum must not cross, the
clipped surrogate and its gradient on both sides of the clip, the clipped value loss and advantage
normalisation; then 2 short seeds' greedy returns must average >= 60 (``min_return``; random:
about 22). The bench trains once (``cpu``: 100k env steps, minutes on a loaded 2-core machine):
return curve, SPS, env steps and time to solve (100-episode mean >= 475), the greedy return.

Lesson: the ratio clip removes the incentive to move the policy further once the new/old
probability ratio leaves [1 - eps, 1 + eps] in the direction the advantage favours, and keeps
the pessimistic unclipped term on the other side, so several epochs of minibatch steps on one
rollout stay near the policy that collected it. GAE trades bias for variance with lambda; a
termination must zero the bootstrap and a truncation (CartPole's 500-step limit) must not:
treating the time limit as failure teaches the agent that long episodes end badly. Anchors:
CleanRL ``ppo.py`` reaches 490.04 +- 6.12 on CartPole-v1 at 500k steps (CleanRL benchmark
docs); gymnasium counts 475 as solved. Vectorising amortises the policy's forward over the
envs: with a small network the per-call overhead of the forward costs more than the step of
CartPole itself.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import torch

from harness import task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.rl import ppo as losses
from kernels.rl.agents import PGConfig, train_ppo
from kernels.rl.envs import SOLVED
from kernels.rl.record import expect_learns
from kernels.rl.returns import gae
from kernels.rl.run import CartPoleTask, RLRun
from kernels.rl.wrong import gae_no_reset, gae_through_termination, optimistic_surrogate, optimistic_value_loss

_AGENT = PGConfig(n_envs=8, n_steps=32, lr=1e-3, gamma=0.98, lam=0.8, epochs=10, minibatches=1)
T, F = True, False
f64 = partial(torch.tensor, dtype=torch.float64)


@task("research.ppo", seed="10.06", title="PPO")
class PPO(CartPoleTask):
    __doc__ = __doc__
    sizes = {
        "tiny": RLRun(dataclasses.replace(_AGENT, total_steps=8_000), min_return=60.0),
        "cpu": RLRun(dataclasses.replace(_AGENT, total_steps=100_000), seeds=1, probe_steps=2048),
    }
    claims = (
        metric("mean_return_last100", ">=", SOLVED, text="PPO solves CartPole-v1: last-100 mean >= 475 (cpu preset)"),
        speedup(
            "vector_env",
            over="single_env",
            at_least=2.0,
            text="8 vectorised envs >= 2x the env steps/s of one env, policy forward included",
        ),
    )
    series = "PPO"
    anchors = (("CleanRL ppo.py, CleanRL benchmark docs", 500_000, "490.04 +- 6.12"),)
    #: the pieces the check and the agent share (mutants replace them)
    gae = staticmethod(gae)
    surrogate = staticmethod(losses.clipped_surrogate_terms)
    value_loss = staticmethod(losses.value_loss)
    normalize = staticmethod(losses.normalize_advantages)
    mutants = (
        Mutant(
            "clip_wrong_side",
            "max instead of min: the optimistic term, so the clip never binds",
            {"surrogate": staticmethod(optimistic_surrogate)},
            match="surrogate",
        ),
        Mutant(
            "bootstraps_through_termination",
            "GAE bootstraps V(s') after the pole fell",
            {"gae": staticmethod(gae_through_termination)},
            match="GAE",
        ),
        Mutant(
            "no_reset_at_truncation",
            "the advantage sum runs across a truncated episode's end into the next",
            {"gae": staticmethod(gae_no_reset)},
            match="GAE",
        ),
        Mutant(
            "value_clip_optimistic",
            "min instead of max in the clipped value loss",
            {"value_loss": staticmethod(optimistic_value_loss)},
            match="value loss",
        ),
        Mutant(
            "no_normalisation",
            "advantages used raw",
            {"normalize": staticmethod(lambda a, eps=1e-8: a)},
            match="normalis",
        ),
    )

    def check(self, ctx):
        g, lam = 0.99, 0.95
        r = f64([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])  # (T=3, N=2)
        v = f64([[0.5, 0.2], [0.4, 0.3], [0.3, 0.6]])
        nv = f64([[0.4, 9.0], [0.9, 0.6], [0.7, 0.7]])  # V(s_t+1) reached
        term = torch.tensor([[F, T], [F, F], [F, F]])  # env 1: the pole falls after step 0
        trunc = torch.tensor([[F, F], [T, F], [F, F]])  # env 0: the time limit after step 1
        d0 = [1 + g * 0.4 - 0.5, 1 + g * 0.9 - 0.4, 1 + g * 0.7 - 0.3]  # env 0: bootstraps V(final obs)
        d1 = [1 - 0.2, 1 + g * 0.6 - 0.3, 1 + g * 0.7 - 0.6]  # env 1: no bootstrap at step 0
        a0 = [d0[0] + g * lam * d0[1], d0[1], d0[2]]  # each episode's sum stops at its end
        a1 = [d1[0], d1[1] + g * lam * d1[2], d1[2]]
        adv, ret = self.gae(r, v, nv, term, trunc, g, lam)
        want = f64([a0, a1]).T
        ctx.assert_close(adv, want, name="GAE advantages (gamma 0.99, lambda 0.95)", where="worked example")
        ctx.assert_close(ret, want + v, name="GAE value targets", where="worked example")
        # the 2 x 2 of the clip: ratios 1.5 and 0.5, advantages +1 and -1, eps 0.2
        new = f64([1.5, 0.5, 1.5, 0.5]).log().requires_grad_()
        terms = self.surrogate(new, torch.zeros_like(new), f64([1.0, 1.0, -1.0, -1.0]), 0.2)
        ctx.assert_close(
            terms.detach(),
            f64([1.2, 0.5, -1.5, -0.8]),
            name="clipped surrogate, both sides of the clip",
            where="ratios 1.5/0.5, A = +-1",
        )
        (grad,) = torch.autograd.grad(terms.sum(), new)
        ctx.assert_close(
            grad, f64([0, 0.5, -1.5, 0]), name="clipped surrogate gradient (0 where clipped)", where="d/d logp_new"
        )
        vl = self.value_loss(torch.tensor([2.0, 1.1]), torch.tensor([1.0, 1.0]), torch.tensor([3.0, 0.0]), 0.2)
        ctx.assert_close(vl, torch.tensor(0.5 * (3.24 + 1.21) / 2), name="clipped value loss", where="clip 0.2")
        n = self.normalize(torch.tensor([1.0, 2.0, 3.0, 6.0]))
        stats = torch.stack([n.mean(), n.std()])
        ctx.assert_close(
            stats, torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0, name="advantage normalisation: mean 0, std 1"
        )
        expect_learns(ctx, ctx.configs[0], self.train_agent)

    def train_agent(self, agent, seed):
        return train_ppo(agent, seed, self.gae, lambda *a: -self.surrogate(*a).mean(), self.value_loss, self.normalize)
