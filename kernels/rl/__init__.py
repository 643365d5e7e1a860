"""Reinforcement-learning pieces by hand: returns, TD/n-step targets, GAE, replay, targets, PPO losses.

* :mod:`kernels.rl.returns`: returns-to-go, TD and n-step targets, GAE (Sutton & Barto 2018;
  Schulman et al. 2016), all with gymnasium's ``terminated`` / ``truncated`` distinction;
* :mod:`kernels.rl.replay`: a replay ring buffer and epsilon schedules (Mnih et al. 2015);
* :mod:`kernels.rl.target`: target-network sync, hard every C steps or Polyak;
* :mod:`kernels.rl.ppo`: the clipped surrogate, value clipping, advantage normalisation
  (Schulman et al. 2017);
* :mod:`kernels.rl.envs`: CartPole environments, episode bookkeeping and small networks;
* :mod:`kernels.rl.agents`: the four training loops (REINFORCE, A2C, PPO, DQN), each taking
  the math above as arguments so that a task's mutant reaches its agent too.
* :mod:`kernels.rl.run`: the CartPole tasks' config (seeds, probe), the env-steps probe and their
  task base (``CartPoleTask``: the probe as ``prepare``, a bench that trains once and records);
* :mod:`kernels.rl.wrong`: plausible wrong versions of the pieces above (the tasks' mutants).
"""
