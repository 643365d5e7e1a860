"""10.08 Deep Q-Learning.

Compared: DQN (Mnih et al., "Human-level control through deep reinforcement learning", Nature
518, 2015) on gymnasium's CartPole-v1 (``kernels.rl.agents.train_dqn``): epsilon-greedy play
with epsilon falling linearly, a replay ring buffer sampled uniformly, the Huber loss on the TD
target r + gamma max_a Q_target(s', a) (1 - terminated), and a target network copied from the
online one every C gradient steps; hyperparameters from RL Zoo's tuned CartPole-v1 entry
(256 x 256 MLP, Adam 2.3e-3, 128 gradient steps every 256 env steps). Timed: env steps/s with
the Q-network choosing actions on one env (one forward per step) against a ``SyncVectorEnv`` of
8 (one batched forward per 8 steps), the same number of env steps each.

The check works by hand the TD target (a terminated step does not bootstrap, a truncated one
does), the replay buffer, the target sync and the epsilon schedule; then 2 short seeds' greedy
returns must average >= 50 (``min_return``; random: about 22). The bench trains once (``cpu``:
50k env steps and 25k gradient steps, minutes on a loaded 2-core machine): return curve, SPS,
env steps and time to solve (100-episode mean >= 475), the greedy return.

Lesson: bootstrapping from a network that is being trained chases a moving target; the frozen
target network and replay (which breaks the correlation of consecutive transitions) are what
made Q-learning with a deep network stable in Mnih et al. 2015. The training episodes still
explore (epsilon 0.04 at the end), so their mean sits below the greedy policy's. Anchors: CleanRL
``dqn.py`` 488.69 +- 16.11 on CartPole-v1 at 500k steps (CleanRL benchmark docs); gymnasium
counts 475 as solved. DQN acts on one env here, as in Mnih et al.; vectorising the acting is
the same amortisation of the forward pass that PPO gets.
"""

from __future__ import annotations

import torch
from torch import nn

from harness import task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.rl.agents import DQNConfig, train_dqn
from kernels.rl.envs import SOLVED
from kernels.rl.record import expect_learns
from kernels.rl.replay import ReplayBuffer, linear_epsilon
from kernels.rl.returns import td_targets
from kernels.rl.run import CartPoleTask, RLRun
from kernels.rl.target import TargetSync
from kernels.rl.wrong import KeepsOldest, NeverSyncs, PolyakBackwards, UnseededSampling, td_through_termination


@task("research.dqn", seed="10.08", title="Deep Q-Learning")
class DQN(CartPoleTask):
    __doc__ = __doc__
    sizes = {
        # small net, short budget: 1,100 gradient steps learn well above random in seconds
        "tiny": RLRun(
            DQNConfig(
                total_steps=4_500,
                hidden=64,
                learning_starts=500,
                train_freq=64,
                gradient_steps=16,
                target_every=64,
                eps_fraction=0.3,
            ),
            min_return=50.0,
        ),
        "cpu": RLRun(DQNConfig(total_steps=50_000), seeds=1, probe_steps=2048),
    }
    claims = (
        metric("eval_return", ">=", SOLVED, text="DQN's greedy policy solves CartPole-v1: >= 475 over 10 episodes"),
        metric(
            "mean_return_last100",
            ">=",
            200.0,
            text="last 100 training episodes (still exploring) average >= 200 (cpu preset)",
        ),
        speedup(
            "vector_env",
            over="single_env",
            at_least=2.0,
            text="8 vectorised envs >= 2x the env steps/s of one env, Q-network forward included",
        ),
    )
    series = "DQN"
    anchors = (("CleanRL dqn.py, CleanRL benchmark docs", 500_000, "488.69 +- 16.11"),)
    #: the pieces the check and the agent share (mutants replace them)
    td_target = staticmethod(td_targets)
    sync_cls = TargetSync
    buffer_cls = ReplayBuffer
    mutants = (
        Mutant(
            "bootstraps_through_termination",
            "r + gamma max Q(s') also after the pole fell",
            {"td_target": staticmethod(td_through_termination)},
            match="TD target",
        ),
        Mutant(
            "target_never_synced",
            "the target network keeps its initial weights",
            {"sync_cls": NeverSyncs},
            match="hard sync",
        ),
        Mutant(
            "polyak_backwards", "theta' <- (1 - tau) theta + tau theta'", {"sync_cls": PolyakBackwards}, match="Polyak"
        ),
        Mutant(
            "buffer_keeps_oldest", "a full buffer drops new transitions", {"buffer_cls": KeepsOldest}, match="overwrite"
        ),
        Mutant("unseeded_sampling", "sampling ignores the generator", {"buffer_cls": UnseededSampling}, match="seeded"),
    )

    def check(self, ctx):
        g = 0.99
        q_next = torch.tensor([[3.0, 10.0], [7.0, 2.0], [4.0, 5.0]])  # target Q(s', .) of 3 transitions
        y = self.td_target(torch.ones(3), q_next.max(-1).values, torch.tensor([False, True, False]), g)
        ctx.assert_close(
            y,
            torch.tensor([1 + g * 10, 1.0, 1 + g * 5]),
            name="TD target r + gamma max Q'(1 - term)",
            where="step 1 terminated, step 2 truncated (bootstraps)",
        )
        self._check_buffer(ctx)
        torch.manual_seed(ctx.rng_seed)
        online, target = nn.Linear(3, 2), nn.Linear(3, 2)
        w0, sync = target.weight.detach().clone(), self.sync_cls(3)
        fired = [sync(s, target, online) for s in (1, 2)]
        ctx.assert_close(target.weight.detach(), w0, name="hard sync: target unchanged before C steps")
        fired.append(sync(3, target, online))
        ctx.assert_close(target.weight.detach(), online.weight.detach(), name="hard sync: target = online at C = 3")
        ctx.expect(fired == [False, False, True], f"sync fired {fired}, not only at step 3", name="hard sync every C")
        soft = nn.Linear(3, 2)  # a target with its own initial weights, not the online ones
        want = 0.1 * online.weight.detach() + 0.9 * soft.weight.detach()
        self.sync_cls(1, tau=0.1)(1, soft, online)
        ctx.assert_close(soft.weight.detach(), want, name="Polyak update tau = 0.1")
        eps = [linear_epsilon(s, 1.0, 0.1, 100) for s in (0, 50, 100, 200)]
        ctx.assert_close(torch.tensor(eps), torch.tensor([1.0, 0.55, 0.1, 0.1]), name="linear epsilon schedule")
        expect_learns(ctx, ctx.configs[0], self.train_agent)

    def _check_buffer(self, ctx):
        buf = self.buffer_cls(4, 2)
        for i in range(5):  # the 5th transition overwrites the 1st
            buf.add([[i, i]], [i % 2], [float(i)], [[i + 1, i + 1]], [i == 2])
        ctx.expect(len(buf) == 4, f"buffer of capacity 4 holds {len(buf)} after 5 adds", name="replay capacity")
        ctx.assert_close(buf.rewards, torch.tensor([4.0, 1.0, 2.0, 3.0]), name="replay overwrite order (oldest first)")
        a, b = (buf.sample(32, torch.Generator().manual_seed(7)) for _ in range(2))
        ctx.expect(
            torch.equal(a["index"], b["index"]),
            "replay sampling is not seeded: the same generator state drew different transitions",
            name="replay sampling is seeded",
        )
        ctx.assert_close(a["next_obs"], a["obs"] + 1, name="replay sample keeps each transition whole")

    def train_agent(self, agent, seed):
        return train_dqn(agent, seed, td_fn=self.td_target, sync_cls=self.sync_cls, buffer_cls=self.buffer_cls)
