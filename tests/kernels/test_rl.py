"""kernels.rl on worked examples computed by hand (each can fail: see the wrong variants asserted against)."""

import pytest
import torch
from torch import nn

from kernels.rl import ppo
from kernels.rl.replay import ReplayBuffer, exponential_epsilon, linear_epsilon
from kernels.rl.returns import gae, n_step_targets, returns_to_go, td_targets
from kernels.rl.target import TargetSync, polyak_update

T, F = True, False


def test_returns_to_go_restart_at_an_episode_boundary():
    # episode A = steps 0-1 (ends after step 1), episode B = steps 2-3 (cut by the batch end)
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    d = torch.tensor([F, T, F, F])
    g = returns_to_go(r, d, 0.5)
    # A: G1 = 2, G0 = 1 + 0.5*2 = 2; B: G3 = 4, G2 = 3 + 0.5*4 = 5
    assert g.tolist() == [2.0, 2.0, 5.0, 4.0]
    no_reset = returns_to_go(r, torch.zeros(4, dtype=torch.bool), 0.5)
    assert no_reset[1] != g[1]  # without the reset, step 1 would see episode B's rewards
    boot = returns_to_go(r, d, 0.5, bootstrap=torch.tensor(8.0))
    assert boot.tolist() == [2.0, 2.0, 3 + 0.5 * (4 + 0.5 * 8), 4 + 0.5 * 8]


def test_returns_to_go_batched_over_envs():
    r = torch.ones(3, 2)
    d = torch.tensor([[F, T], [T, F], [F, F]])
    g = returns_to_go(r, d, 1.0)
    assert g.tolist() == [[2.0, 1.0], [1.0, 2.0], [1.0, 1.0]]


def test_td_targets_termination_does_not_bootstrap_truncation_does():
    r = torch.tensor([1.0, 1.0, 1.0])
    nv = torch.tensor([10.0, 10.0, 10.0])
    term = torch.tensor([F, T, F])
    # step 2 truncated: still r + gamma V(final obs)
    assert td_targets(r, nv, term, 0.9).tolist() == pytest.approx([10.0, 1.0, 10.0])


def test_n_step_targets_worked_example():
    g = 0.5
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    nv = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0])
    term = torch.tensor([F, T, F, F, F])
    trunc = torch.tensor([F, F, F, T, F])
    out = n_step_targets(r, nv, term, trunc, g, 3)
    expected = [
        1 + g * 2,  # episode terminates after step 1: no bootstrap
        2,
        3 + g * 4 + g * g * 40,  # truncated after step 3: bootstrap V(final obs) = 40
        4 + g * 40,
        5 + g * 50,  # rollout ends: bootstrap
    ]
    assert out.tolist() == pytest.approx(expected)
    # n = 1 is the TD target
    assert n_step_targets(r, nv, term, trunc, g, 1).tolist() == pytest.approx(td_targets(r, nv, term, g).tolist())
    # treating truncation as termination drops the bootstrap at step 3
    wrong = n_step_targets(r, nv, term | trunc, torch.zeros_like(trunc), g, 3)
    assert wrong[3] == pytest.approx(4.0) and wrong[3] != out[3]
    with pytest.raises(ValueError, match="horizon"):
        n_step_targets(r, nv, term, trunc, g, 0)


def test_n_step_long_horizon_is_the_bootstrapped_return_to_go():
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(12, 3, generator=gen)
    nv = torch.rand(12, 3, generator=gen)
    term = torch.rand(12, 3, generator=gen) < 0.2
    trunc = torch.zeros_like(term)
    out = n_step_targets(r, nv, term, trunc, 0.9, 100)
    ref = returns_to_go(r, term, 0.9, bootstrap=nv[-1] * (~term[-1]))
    torch.testing.assert_close(out, ref)


def test_gae_hand_computed():
    gamma, lam = 0.99, 0.95
    r = torch.tensor([1.0, 1.0, 1.0])
    v = torch.tensor([0.5, 0.4, 0.3])
    nv = torch.tensor([0.4, 0.3, 0.9])  # step 2 truncated: V(final obs) = 0.9
    term = torch.tensor([F, F, F])
    trunc = torch.tensor([F, F, T])
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
    d2 = 1 + gamma * 0.9 - 0.3
    d1 = 1 + gamma * 0.3 - 0.4
    d0 = 1 + gamma * 0.4 - 0.5
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    assert adv.tolist() == pytest.approx([a0, a1, a2])
    assert ret.tolist() == pytest.approx([a0 + 0.5, a1 + 0.4, a2 + 0.3])
    # the same step terminated: no bootstrap
    adv_t, _ = gae(r, v, nv, trunc, term, gamma, lam)
    assert adv_t[2].item() == pytest.approx(1 - 0.3)


def test_gae_done_mask_stops_the_sum_and_limits():
    gamma, lam = 0.99, 0.95
    r = torch.tensor([[1.0], [0.0], [2.0]])
    v = torch.tensor([[0.2], [0.1], [0.3]])
    nv = torch.tensor([[0.1], [5.0], [0.7]])  # step 1 terminates: its next value is ignored
    term = torch.tensor([[F], [T], [F]])
    trunc = torch.zeros_like(term)
    adv, _ = gae(r, v, nv, term, trunc, gamma, lam)
    d2 = 2 + gamma * 0.7 - 0.3
    d1 = 0 - 0.1
    d0 = 1 + gamma * 0.1 - 0.2
    assert adv[:, 0].tolist() == pytest.approx([d0 + gamma * lam * d1, d1, d2])  # step 1 does not see step 2
    td = td_targets(r, nv, term, gamma) - v
    torch.testing.assert_close(gae(r, v, nv, term, trunc, gamma, 0.0)[0], td)
    _, ret1 = gae(r, v, nv, term, trunc, gamma, 1.0)
    torch.testing.assert_close(ret1, n_step_targets(r, nv, term, trunc, gamma, 100))


def test_replay_buffer_capacity_overwrite_and_seeded_sampling():
    buf = ReplayBuffer(4, 2)
    for i in range(3):
        buf.add([[i, i]], [i % 2], [float(i)], [[i + 1, i + 1]], [i == 2])
    assert len(buf) == 3
    buf.add([[3, 3], [4, 4]], [1, 0], [3.0, 4.0], [[4, 4], [5, 5]], [F, F])  # wraps: 4 overwrites 0
    assert len(buf) == 4 and buf.pos == 1
    assert buf.rewards.tolist() == [4.0, 1.0, 2.0, 3.0]
    assert buf.terminated.tolist() == [F, F, T, F]
    a = buf.sample(16, torch.Generator().manual_seed(3))
    b = buf.sample(16, torch.Generator().manual_seed(3))
    assert torch.equal(a["index"], b["index"]) and a["index"].max() < 4
    torch.testing.assert_close(a["rewards"], buf.rewards[a["index"]])
    torch.testing.assert_close(a["next_obs"][:, 0], a["obs"][:, 0] + 1)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, 1).sample(1, torch.Generator())
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 1)


def test_epsilon_schedules():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert exponential_epsilon(0, 1.0, 0.05, 10) == pytest.approx(1.0)
    assert exponential_epsilon(10, 1.0, 0.05, 10) == pytest.approx(0.05 + 0.95 / 2.718281828459045)


def _pair():
    torch.manual_seed(0)
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    return online, target


def test_hard_sync_every_c_steps():
    online, target = _pair()
    sync = TargetSync(every=3)
    w0 = target.weight.clone()
    assert not sync(1, target, online) and not sync(2, target, online)
    torch.testing.assert_close(target.weight, w0)
    assert sync(3, target, online)
    torch.testing.assert_close(target.weight, online.weight)
    with torch.no_grad():
        online.weight.add_(1.0)
    assert not sync(4, target, online)
    assert not torch.allclose(target.weight, online.weight)


def test_polyak_update():
    online, target = _pair()
    expected = 0.1 * online.weight + 0.9 * target.weight
    polyak_update(target, online, 0.1)
    torch.testing.assert_close(target.weight, expected.detach())
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, online, 1.5)


def test_clipped_surrogate_both_sides():
    eps = 0.2
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5]))  # ratios 1.5, 0.5, 1.5, 0.5
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    terms = ppo.clipped_surrogate_terms(new, old, adv, eps)
    # A > 0: gain capped at 1.2; ratio 0.5 keeps 0.5. A < 0: ratio 1.5 keeps -1.5; ratio 0.5 clipped to -0.8
    assert terms.tolist() == pytest.approx([1.2, 0.5, -1.5, -0.8])
    assert ppo.clipped_surrogate_loss(new, old, adv, eps).item() == pytest.approx(-(1.2 + 0.5 - 1.5 - 0.8) / 4)
    # the clipped side carries no gradient
    new = new.clone().requires_grad_()
    ppo.clipped_surrogate_terms(new, old, adv, eps).sum().backward()
    assert new.grad.tolist() == pytest.approx([0.0, 0.5, -1.5, 0.0])


def test_value_loss_clipped():
    v_old = torch.tensor([1.0, 1.0])
    v_new = torch.tensor([2.0, 1.1])
    ret = torch.tensor([3.0, 0.0])
    # sample 0: unclipped (2-3)^2 = 1, clipped (1.2-3)^2 = 3.24 -> 3.24; sample 1: 1.21 vs 1.21
    assert ppo.value_loss(v_new, v_old, ret, 0.2).item() == pytest.approx(0.5 * (3.24 + 1.21) / 2)
    assert ppo.value_loss(v_new, v_old, ret).item() == pytest.approx(0.5 * (1.0 + 1.21) / 2)


def test_normalize_advantages():
    a = torch.tensor([1.0, 2.0, 3.0, 6.0])
    n = ppo.normalize_advantages(a)
    assert n.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert n.std().item() == pytest.approx(1.0, abs=1e-6)
    assert n.tolist() == pytest.approx(((a - 3) / a.std()).tolist())
    with pytest.raises(ValueError, match="2 samples"):
        ppo.normalize_advantages(torch.tensor([1.0]))


def test_vec_step_returns_the_final_observation_of_an_ended_env():
    pytest.importorskip("gymnasium")
    import numpy as np

    from kernels.rl.envs import make_vec, vec_step

    envs = make_vec(2)
    envs.reset(seed=0)
    for _ in range(200):  # always push left: the pole falls within a few dozen steps
        obs, reached, _, term, trunc = vec_step(envs, np.zeros(2, dtype=np.int64))
        ended = term | trunc
        if ended.any():
            i = int(np.flatnonzero(ended)[0])
            assert not np.allclose(obs[i], reached[i])  # obs is the next episode's first state
            assert abs(reached[i][2]) > 0.2 or abs(reached[i][0]) > 2.4  # the terminal angle or position
            break
    else:
        pytest.fail("no episode ended in 200 steps of pushing left")
    envs.close()


def test_runlog_solved_at():
    from kernels.rl.envs import RunLog

    log = RunLog()
    for i, ret in enumerate([10.0] * 5 + [500.0] * 5):
        log.env_steps = 100 * (i + 1)
        log.episode(ret)
    assert log.solved_at(475.0, window=5)[0] == 1000
    assert log.solved_at(475.0, window=6) is None
    assert log.mean_last(5) == 500.0
