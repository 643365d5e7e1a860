"""kernels.rl.run: the RL tasks' shared config and the env-steps probe both variants time."""

import pytest
import torch

from harness import capabilities
from harness.context import Context, TaskRecord
from harness.registry import REGISTRY
from kernels.rl.agents import PGConfig
from kernels.rl.run import RLRun, env_steps_prepared

pytestmark = pytest.mark.skipif(bool(capabilities.missing(["gymnasium"])), reason="needs gymnasium")


def test_probe_counts_env_steps_for_one_env_and_a_vector_env():
    ctx = Context(REGISTRY.get("research.ppo"), mode="bench", rng_seed=0, record=TaskRecord(id="t"))
    run = RLRun(PGConfig(), probe_steps=16, n_envs=4)
    for impl in ("single_env", "vector_env"):
        prepared = env_steps_prepared(ctx, impl, run)
        assert prepared.items == 16 and prepared.item_unit == "env_steps"
        prepared.fn()  # 16 env steps: 16 single forwards, or 4 batched ones over 4 envs
    w0 = env_steps_prepared(ctx, "single_env", run, hidden=8)
    assert w0.items == 16 and torch.initial_seed() == 0  # the policy was built from the run's seed


def test_cartpole_task_base_probes_with_the_agents_width_and_needs_train_agent():
    from kernels.rl.agents import DQNConfig
    from kernels.rl.record import METRICS
    from kernels.rl.run import CartPoleTask

    class Bare(CartPoleTask):
        pass

    task = Bare()
    assert task.variants == ("single_env", "vector_env") and task.metrics is METRICS
    ctx = Context(REGISTRY.get("research.dqn"), mode="bench", rng_seed=0, record=TaskRecord(id="t"))
    prepared = task.prepare(ctx, "vector_env", RLRun(DQNConfig(hidden=8), probe_steps=8, n_envs=4))
    assert prepared.items == 8
    prepared.fn()  # 8 env steps on 4 envs, an 8-wide Q-network choosing the actions
    with pytest.raises(NotImplementedError, match="train_agent"):
        task.train_agent(None, 0)
