"""8.06 Actor-critic.

Compared: synchronous advantage actor-critic (A2C: the synchronous form of A3C, Mnih et al.,
"Asynchronous Methods for Deep Reinforcement Learning", ICML 2016) on gymnasium's CartPole-v1
(``kernels.rl.agents.train_a2c``): a ``SyncVectorEnv`` of 8 envs steps 8 times, the critic's
n-step targets give the advantage A_t = G_t^(n) - V(s_t) for the actor and the regression
target for the critic, one Adam step per rollout (Stable-Baselines3's A2C with gae_lambda = 1).
Timed: env steps/s with the policy choosing actions on one env (one forward per step) against
the vector env (one batched forward per 8 steps), the same number of env steps each.

Check (tiny): n-step and one-step TD targets on a hand-computed rollout (gamma 0.5): a
terminated step does not bootstrap, a truncated one bootstraps the value of the final
observation (gymnasium's ``info["final_obs"]``, not the reset state), no sum crosses an episode
end, and the rollout's last step bootstraps. Then 2 seeds of a short run: the greedy policy's
mean return must reach 50 (``min_return``; a random policy's is about 22).

Bench: env steps/s single vs vectorised; one training run (return per episode against env
steps), SPS including training, time and env steps to solve (mean of 100 episodes >= 475), the
greedy policy's return. The ``cpu`` preset is long: 100k env steps, minutes on a loaded 2-core
machine.

Lesson: the critic turns the Monte Carlo return of REINFORCE into a bootstrapped n-step target,
trading variance for bias, and the vector env makes one rollout a batch of decorrelated
trajectories. Time limits are the classic trap: CartPole-v1 truncates at 500 steps, and a target
that treats truncation as termination tells the critic that the best states are worth 1.
Anchors: RL Zoo's tuned A2C reaches 500 +- 0 on CartPole-v1 (rl-baselines3-zoo benchmark, 500k
steps); gymnasium counts 475 as solved.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.rl import wrong
from kernels.rl.agents import PGConfig, train_a2c
from kernels.rl.record import expect_learns
from kernels.rl.returns import n_step_targets
from kernels.rl.run import CartPoleTask, RLRun

_AGENT = PGConfig(n_envs=8, n_steps=8, lr=1e-3, ent_coef=0.0)
T, F = True, False


@task("advanced.actor_critic", seed="8.06", title="actor-critic")
class ActorCritic(CartPoleTask):
    __doc__ = __doc__
    sizes = {
        "tiny": RLRun(dataclasses.replace(_AGENT, total_steps=8_000), min_return=50.0),
        "cpu": RLRun(dataclasses.replace(_AGENT, total_steps=100_000), seeds=1, probe_steps=2048, min_return=50.0),
    }
    claims = (
        metric("eval_return", ">=", 475.0, text="A2C greedy policy solves CartPole-v1: >= 475 in 10 episodes (cpu)"),
        speedup(
            "vector_env",
            over="single_env",
            at_least=2.0,
            text="8 vectorised envs >= 2x the env steps/s of one env, policy forward included",
        ),
    )
    series = "A2C"
    anchors = (("RL Zoo A2C (rl-baselines3-zoo benchmark)", 500_000, "500 +- 0"),)
    #: n-step targets the check and the agent share (mutants replace them)
    targets = staticmethod(n_step_targets)
    mutants = (
        Mutant(
            "bootstraps_through_termination",
            "the critic's target adds gamma V(s') after the pole fell",
            {"targets": staticmethod(wrong.n_step_through_termination)},
            match="n-step",
        ),
        Mutant(
            "truncation_as_termination",
            "the 500-step time limit is treated as a fall: no bootstrap",
            {"targets": staticmethod(wrong.n_step_truncation_as_termination)},
            match="n-step",
        ),
        Mutant(
            "no_reset_at_episode_end",
            "the n-step sum runs into the next episode",
            {"targets": staticmethod(wrong.n_step_no_reset)},
            match="n-step",
        ),
    )

    def check(self, ctx):
        g = 0.5
        r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
        nv = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0], dtype=torch.float64)  # V(s_t+1) of the state reached
        term = torch.tensor([F, T, F, F, F])  # the pole falls after step 1
        trunc = torch.tensor([F, F, F, T, F])  # the time limit after step 3
        want3 = torch.tensor([1 + g * 2, 2, 3 + g * 4 + g * g * 40, 4 + g * 40, 5 + g * 50], dtype=torch.float64)
        want1 = torch.tensor([1 + g * 10, 2, 3 + g * 30, 4 + g * 40, 5 + g * 50], dtype=torch.float64)
        where = "T=5, gamma 0.5, terminated after 1, truncated after 3"
        ctx.assert_close(self.targets(r, nv, term, trunc, g, 3), want3, name="n-step targets (n = 3)", where=where)
        ctx.assert_close(
            self.targets(r, nv, term, trunc, g, 1), want1, name="n-step targets (n = 1: TD targets)", where=where
        )
        batched = self.targets(*(x[:, None].repeat(1, 2) for x in (r, nv, term, trunc)), g, 3)  # (T, N=2)
        ctx.assert_close(batched[:, 1], want3, name="n-step targets, (T, N) batch")
        expect_learns(ctx, ctx.configs[0], self.train_agent)

    def train_agent(self, agent, seed):
        return train_a2c(agent, seed, targets_fn=self.targets)
