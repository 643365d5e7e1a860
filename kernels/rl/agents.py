"""Four CartPole-v1 agents: REINFORCE with a baseline, A2C, PPO and DQN.

Each ``train_*`` takes a frozen config and a seed and returns ``(RunLog, act)``: the
training episodes (:class:`kernels.rl.envs.RunLog`) and a greedy action function for
:func:`kernels.rl.envs.evaluate`. The math (returns, targets, GAE, losses, target sync, replay)
comes in as arguments, defaulting to :mod:`kernels.rl`'s, so a task passes its own (possibly
mutated) pieces and a wrong piece reaches the agent as well as the worked example.

Sources: Williams 1992 (REINFORCE) and Sutton & Barto 2018, section 13.4 (with baseline); Mnih et
al. 2016 (A2C, the synchronous form of A3C) and Stable-Baselines3's A2C; Schulman et al. 2017
and CleanRL's ``ppo.py`` (Huang et al., "The 37 Implementation Details of PPO", 2022); Mnih et
al. 2015 (DQN) with RL Zoo's CartPole-v1 hyperparameters.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from kernels.rl import ppo as ppo_losses
from kernels.rl.envs import EpisodeReturns, RunLog, make_env, make_vec, mlp, vec_step
from kernels.rl.replay import ReplayBuffer, linear_epsilon
from kernels.rl.returns import gae, n_step_targets, returns_to_go, td_targets
from kernels.rl.target import TargetSync


def _greedy(net):
    return lambda obs: net(obs).argmax(-1)


def _sample(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions (N,) int64 drawn from softmax(logits (N, A)) and their log-probabilities (N,).

    ``torch.multinomial`` instead of ``Categorical(...).sample()``: the same draw without the
    distribution's argument validation, which costs more than the policy's forward per env step.
    """
    logp_all = logits.log_softmax(-1)
    a = torch.multinomial(logp_all.exp(), 1)  # (N, 1)
    return a.squeeze(1), logp_all.gather(1, a).squeeze(1)


def _dist(logits: torch.Tensor) -> Categorical:
    return Categorical(logits=logits, validate_args=False)


@dataclasses.dataclass(frozen=True)
class PGConfig:
    """REINFORCE with a learned baseline, A2C and PPO share this config (unused fields ignored)."""

    total_steps: int = 20_000
    """env steps of training (all envs together)"""
    n_envs: int = 8
    """A2C/PPO: envs in the SyncVectorEnv (REINFORCE: one env, whole episodes)"""
    n_steps: int = 32
    """A2C/PPO: steps per env per rollout; REINFORCE: episodes per update"""
    lr: float = 1e-3
    """Adam learning rate (PPO: annealed linearly to 0)"""
    gamma: float = 0.99
    """discount"""
    lam: float = 0.95
    """GAE lambda (PPO)"""
    epochs: int = 10
    """PPO: passes over each rollout"""
    minibatches: int = 4
    """PPO: minibatches per pass"""
    clip: float = 0.2
    """PPO: ratio clip epsilon (also the value clip)"""
    ent_coef: float = 0.0
    """entropy bonus weight"""
    hidden: int = 64
    """width of both hidden layers"""


def train_reinforce(cfg: PGConfig, seed: int, returns_fn=returns_to_go, normalize=ppo_losses.normalize_advantages):
    """Monte Carlo policy gradient: whole episodes, advantage G_t - V(s_t), V regressed on G_t."""
    torch.manual_seed(seed)
    pi, v = mlp(4, cfg.hidden, 2, 0.01), mlp(4, cfg.hidden, 1, 1.0)
    opt = torch.optim.Adam([*pi.parameters(), *v.parameters()], lr=cfg.lr)
    env, log = make_env(), RunLog()
    obs, _ = env.reset(seed=seed)
    while log.env_steps < cfg.total_steps:
        batch_obs, acts, rews, dones = [], [], [], []
        for _ in range(cfg.n_steps):  # n_steps whole episodes, one after another
            total, end = 0.0, False
            while not end:
                with torch.no_grad():
                    a = int(_sample(pi(torch.as_tensor(obs)[None]))[0])
                batch_obs.append(obs)
                obs, r, term, trunc, _ = env.step(a)
                end = term or trunc
                acts.append(a)
                rews.append(float(r))
                dones.append(end)
                total += float(r)
                log.env_steps += 1
            log.episode(total)
            obs, _ = env.reset()
        o = torch.as_tensor(np.array(batch_obs))  # (T, 4): episodes back to back
        g = returns_fn(torch.tensor(rews), torch.tensor(dones), cfg.gamma)  # (T,)
        values = v(o).squeeze(-1)  # (T,)
        adv = normalize(g - values.detach())
        logp = _dist(pi(o)).log_prob(torch.tensor(acts))
        loss = -(logp * adv).mean() + 0.5 * F.mse_loss(values, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return log.done(), _greedy(pi)


def _rollout(envs, pi, v, obs, cfg, tracker):
    """cfg.n_steps steps of every env; tensors (T, N, ...) and the next obs."""
    buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "term", "trunc", "reached")}
    for _ in range(cfg.n_steps):
        o = torch.as_tensor(obs)  # (N, 4)
        with torch.no_grad():
            a, logp = _sample(pi(o))
            buf["logp"].append(logp)
            buf["val"].append(v(o).squeeze(-1))
        obs, reached, rew, term, trunc = vec_step(envs, a.numpy())
        tracker.add(rew, term | trunc)
        for k, x in (("obs", o), ("act", a), ("rew", rew), ("term", term), ("trunc", trunc), ("reached", reached)):
            buf[k].append(torch.as_tensor(x))
    out = {k: torch.stack(x) for k, x in buf.items()}
    out["rew"] = out["rew"].float()
    with torch.no_grad():
        out["next_val"] = v(out["reached"].float()).squeeze(-1)  # (T, N): V of the state reached
    return out, obs


def train_a2c(cfg: PGConfig, seed: int, targets_fn=n_step_targets):
    """Synchronous advantage actor-critic on ``cfg.n_envs`` envs: advantage = n-step target -
    V(s_t), n = the rollout length (Stable-Baselines3's A2C with gae_lambda = 1)."""
    torch.manual_seed(seed)
    pi, v = mlp(4, cfg.hidden, 2, 0.01), mlp(4, cfg.hidden, 1, 1.0)
    opt = torch.optim.Adam([*pi.parameters(), *v.parameters()], lr=cfg.lr)
    envs, log = make_vec(cfg.n_envs), RunLog()
    tracker = EpisodeReturns(cfg.n_envs, log)
    obs, _ = envs.reset(seed=seed)
    while log.env_steps < cfg.total_steps:
        b, obs = _rollout(envs, pi, v, obs, cfg, tracker)
        target = targets_fn(b["rew"], b["next_val"], b["term"], b["trunc"], cfg.gamma, cfg.n_steps)  # (T, N)
        values = v(b["obs"]).squeeze(-1)  # (T, N)
        dist = _dist(pi(b["obs"]))
        adv = (target - values).detach()
        loss = (
            -(dist.log_prob(b["act"]) * adv).mean()
            + 0.5 * F.mse_loss(values, target)
            - cfg.ent_coef * dist.entropy().mean()
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*pi.parameters(), *v.parameters()], 0.5)
        opt.step()
    envs.close()
    return log.done(), _greedy(pi)


def train_ppo(
    cfg: PGConfig,
    seed: int,
    gae_fn=gae,
    surrogate_fn=ppo_losses.clipped_surrogate_loss,
    value_loss_fn=ppo_losses.value_loss,
    normalize=ppo_losses.normalize_advantages,
):
    """PPO-clip on ``cfg.n_envs`` envs (CleanRL ``ppo.py``'s loop: GAE, normalised advantages
    per minibatch, clipped value loss, gradient norm 0.5, learning rate annealed to 0)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    pi, v = mlp(4, cfg.hidden, 2, 0.01), mlp(4, cfg.hidden, 1, 1.0)
    params = [*pi.parameters(), *v.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    envs, log = make_vec(cfg.n_envs), RunLog()
    tracker = EpisodeReturns(cfg.n_envs, log)
    obs, _ = envs.reset(seed=seed)
    while log.env_steps < cfg.total_steps:
        opt.param_groups[0]["lr"] = cfg.lr * (1 - log.env_steps / cfg.total_steps)
        b, obs = _rollout(envs, pi, v, obs, cfg, tracker)
        adv, ret = gae_fn(b["rew"], b["val"], b["next_val"], b["term"], b["trunc"], cfg.gamma, cfg.lam)
        flat = {k: b[k].flatten(0, 1) for k in ("obs", "act", "logp", "val")}  # (T*N, ...)
        adv, ret = adv.flatten(), ret.flatten()
        n = adv.numel()
        for _ in range(cfg.epochs):
            for idx in torch.randperm(n, generator=g).chunk(cfg.minibatches):
                dist = _dist(pi(flat["obs"][idx]))
                pg = surrogate_fn(dist.log_prob(flat["act"][idx]), flat["logp"][idx], normalize(adv[idx]), cfg.clip)
                vl = value_loss_fn(v(flat["obs"][idx]).squeeze(-1), flat["val"][idx], ret[idx], cfg.clip)
                loss = pg + 0.5 * vl - cfg.ent_coef * dist.entropy().mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 0.5)
                opt.step()
    envs.close()
    return log.done(), _greedy(pi)


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN on one env; defaults are RL Zoo's tuned CartPole-v1 hyperparameters (rl-zoo3
    ``hyperparams/dqn.yml``), with the target synced once per training phase."""

    total_steps: int = 50_000
    """env steps of training"""
    lr: float = 2.3e-3
    """Adam learning rate"""
    batch: int = 64
    """transitions per gradient step"""
    buffer: int = 100_000
    """replay capacity"""
    learning_starts: int = 1000
    """env steps of random play before the first update"""
    train_freq: int = 256
    """env steps between training phases"""
    gradient_steps: int = 128
    """gradient steps per training phase"""
    target_every: int = 128
    """hard target sync every this many gradient steps"""
    tau: float = 1.0
    """target sync weight (1: hard copy; < 1: Polyak)"""
    eps_end: float = 0.04
    """final epsilon"""
    eps_fraction: float = 0.16
    """share of total_steps over which epsilon falls linearly from 1"""
    gamma: float = 0.99
    """discount"""
    hidden: int = 256
    """width of both hidden layers"""


def train_dqn(cfg: DQNConfig, seed: int, td_fn=td_targets, sync_cls=TargetSync, buffer_cls=ReplayBuffer):
    """DQN (Mnih et al. 2015): epsilon-greedy play, uniform replay, Huber loss on
    r + gamma max_a Q_target(s', a) (1 - terminated), target synced by ``sync_cls``."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    q = mlp(4, cfg.hidden, 2, 1.0)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    sync, buf = sync_cls(cfg.target_every, cfg.tau), buffer_cls(cfg.buffer, 4)
    env, log = make_env(), RunLog()
    obs, _ = env.reset(seed=seed)
    total, grad_steps = 0.0, 0
    for step in range(1, cfg.total_steps + 1):
        eps = linear_epsilon(step, 1.0, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps))
        if rng.random() < eps:
            a = int(rng.integers(2))
        else:
            with torch.no_grad():
                a = int(q(torch.as_tensor(obs)[None]).argmax())
        nxt, r, term, trunc, _ = env.step(a)
        buf.add(obs[None], [a], [r], nxt[None], [term])  # nxt: the state reached, also at an end
        total += float(r)
        log.env_steps += 1
        obs = nxt
        if term or trunc:
            log.episode(total)
            total, (obs, _) = 0.0, env.reset()
        if step >= cfg.learning_starts and step % cfg.train_freq == 0:
            for _ in range(cfg.gradient_steps):
                s = buf.sample(cfg.batch, g)
                with torch.no_grad():
                    y = td_fn(s["rewards"], target(s["next_obs"]).max(-1).values, s["terminated"], cfg.gamma)
                qa = q(s["obs"]).gather(1, s["actions"][:, None]).squeeze(1)  # (B,)
                loss = F.smooth_l1_loss(qa, y)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(q.parameters(), 10.0)
                opt.step()
                grad_steps += 1
                sync(grad_steps, target, q)
    env.close()
    return log.done(), _greedy(q)
