"""8.05 Policy gradient (REINFORCE) agent.

Compared: REINFORCE with a learned baseline (Williams, "Simple statistical gradient-following
algorithms for connectionist reinforcement learning", Machine Learning 8, 1992; Sutton & Barto,
*Reinforcement Learning: An Introduction*, 2nd ed. 2018, section 13.4) on gymnasium's
CartPole-v1 (``kernels.rl.agents.train_reinforce``): 4 whole episodes per update, laid back to
back in one batch; the policy gradient weights log pi(a_t | s_t) by the return-to-go G_t minus
a value baseline V(s_t) (normalised), and V regresses on G_t. Timed: env steps/s with the
policy choosing actions on one env (one forward per step) against a ``SyncVectorEnv`` of 8 (one
batched forward per 8 steps), the same number of env steps each.

Check (tiny): returns-to-go on a hand-computed batch of two episodes back to back (gamma 0.5):
the return restarts at the episode boundary inside the batch, is discounted, and runs backwards
from each episode's end; the same per env on a (T, N) batch. Then 2 seeds of a short run: the
greedy policy's mean return must be well above a random policy's (about 22).

Bench: env steps/s single vs vectorised; one training run (return per episode against env
steps), SPS including training, time and env steps to solve (mean of 100 episodes >= 475), the
greedy policy's return. The ``cpu`` preset is long: 60k env steps, minutes on a loaded
2-core machine.

Lesson: the score-function estimator needs only log-probabilities of the actions taken, but its
variance grows with the length of the return; causality (an action does not affect earlier
rewards, hence returns-to-go, not the whole episode's return) and a baseline (which leaves the
expectation unchanged) are the two standard cuts (Sutton & Barto 2018, 13.3-13.4). A return
that does not restart at an episode end credits actions with the next episode's rewards.
Anchor: gymnasium counts a CartPole-v1 mean of 475 over 100 episodes as solved.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import TrainingRun, task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.rl.agents import PGConfig, train_reinforce
from kernels.rl.record import METRICS, expect_learns, record_run
from kernels.rl.returns import returns_to_go
from kernels.rl.run import RLRun, env_steps_prepared

_AGENT = PGConfig(n_steps=4, lr=3e-3, gamma=0.99)
T, F = True, False
ANCHORS = [("gymnasium CartPole-v1 reward_threshold", "", "475")]


# -- the wrong versions (mutants) ------------------------------------------------------------
def _no_reset(rewards, dones, gamma, bootstrap=None):
    return returns_to_go(rewards, torch.zeros_like(dones), gamma, bootstrap)


def _forward_sum(rewards, dones, gamma, bootstrap=None):
    # cumulative reward so far: credits each action with the rewards before it
    return returns_to_go(rewards.flip(0), dones.flip(0).roll(1, 0), gamma).flip(0)


def _undiscounted(rewards, dones, gamma, bootstrap=None):
    return returns_to_go(rewards, dones, 1.0, bootstrap)


@task("advanced.policy_gradient", seed="8.05", title="policy gradient (REINFORCE) agent")
class PolicyGradient(TrainingRun):
    __doc__ = __doc__
    requires = ("gymnasium",)
    variants = ("single_env", "vector_env")
    sizes = {
        "tiny": RLRun(dataclasses.replace(_AGENT, total_steps=3_000)),
        "cpu": RLRun(dataclasses.replace(_AGENT, total_steps=60_000), seeds=1, probe_steps=2048),
    }
    time_limit_s = {"check": 240.0, "bench": 900.0}
    metrics = METRICS
    claims = (
        metric("eval_return", ">=", 475.0, text="REINFORCE's greedy policy reaches >= 475 over 10 episodes (cpu)"),
        speedup("vector_env", over="single_env", at_least=2.0,
                text="8 vectorised envs >= 2x the env steps/s of one env, policy forward included"),
    )  # fmt: skip
    #: returns-to-go the check and the agent share (mutants replace it)
    returns = staticmethod(returns_to_go)
    mutants = (
        Mutant("no_reset_at_episode_end", "the return runs on into the next episode in the batch",
               {"returns": staticmethod(_no_reset)}, match="returns-to-go"),
        Mutant("forward_sum", "sums the rewards before t instead of after", {"returns": staticmethod(_forward_sum)},
               match="returns-to-go"),
        Mutant("undiscounted", "gamma ignored", {"returns": staticmethod(_undiscounted)}, match="returns-to-go"),
    )  # fmt: skip

    def check(self, ctx):
        g = 0.5
        r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
        d = torch.tensor([F, F, T, F, T])  # episode A = steps 0-2, episode B = steps 3-4
        want = [1 + g * 2 + g * g * 3, 2 + g * 3, 3, 4 + g * 5, 5]
        where = "two episodes back to back, gamma 0.5"
        got = self.returns(r, d, g)
        ctx.assert_close(got, torch.tensor(want, dtype=torch.float64), name="returns-to-go", where=where)
        both = self.returns(torch.stack([r, r.flip(0)], 1), torch.stack([d, d], 1), g)  # (T, N=2)
        want_b = [5 + g * 4 + g * g * 3, 4 + g * 3, 3, 2 + g * 1, 1]
        ctx.assert_close(both, torch.tensor([want, want_b], dtype=torch.float64).T, name="returns-to-go, (T, N) batch",
                         where=where)  # fmt: skip
        expect_learns(ctx, ctx.configs[0], self._train)

    def _train(self, agent, seed):
        return train_reinforce(agent, seed, returns_fn=self.returns)

    def prepare(self, ctx, impl, config):
        return env_steps_prepared(ctx, impl, config)

    def bench(self, ctx):
        run = ctx.configs[0]
        log, act = self._train(run.agent, ctx.rng_seed)
        record_run(ctx, log, act, "REINFORCE", ANCHORS)
        super().bench(ctx)
