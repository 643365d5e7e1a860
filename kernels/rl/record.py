"""What an RL task records from one training run (duck-typed on ``harness.context.Context``).

Metric names (declare them in the task's ``metrics``): ``mean_return_last100``,
``eval_return``, ``env_steps``, ``train_wall_s``, ``sps_with_training`` and, when the
100-episode mean reached 475, ``steps_to_solve`` and ``time_to_solve_s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.rl.envs import SOLVED, RunLog, evaluate

METRICS = {
    "mean_return_last100": "mean return of the last 100 training episodes",
    "eval_return": "the greedy policy's mean return over 10 episodes after training",
    "env_steps": "env steps of the training run",
    "train_wall_s": "wall seconds of the training run (loaded machines: see the fingerprint)",
    "sps_with_training": "env steps per second including the updates",
    "steps_to_solve": "env steps when the 100-episode mean first reached 475 (absent if never)",
    "time_to_solve_s": "wall seconds to that point",
}


def record_run(ctx: Any, log: RunLog, act: Any, agent: str, anchors: list[tuple[str, Any, str]]) -> None:
    """Return curve, metrics (:data:`METRICS`) and a table of this run beside ``anchors``.

    Args:
        log, act: what a ``kernels.rl.agents.train_*`` returned.
        agent: series name of the curve (``PPO``, ``DQN``...).
        anchors: (source, env steps, return) rows of published figures.
    """
    ctx.curve("return per episode", log.end_steps, log.returns, x_label="env steps", y_label="return", series=agent)
    ev = float(np.mean(evaluate(act, 10, 10_000)))
    values = {
        "mean_return_last100": log.mean_last(100),
        "eval_return": ev,
        "env_steps": log.env_steps,
        "train_wall_s": log.wall_s,
        "sps_with_training": log.env_steps / max(log.wall_s, 1e-9),
    }
    solved = log.solved_at(SOLVED, 100)
    if solved:
        values["steps_to_solve"], values["time_to_solve_s"] = solved
    for k, v in values.items():
        ctx.metric(k, v)
    rows = [
        {
            "run": f"this run ({agent}, 1 seed, greedy eval {ev:.1f})",
            "env_steps": log.env_steps,
            "return": f"{log.mean_last(100):.1f} (last 100 episodes)",
            "wall_s": f"{log.wall_s:.1f}",
        }
    ]
    rows += [{"run": s, "env_steps": n, "return": r, "wall_s": ""} for s, n, r in anchors]
    ctx.table("CartPole-v1 return beside published figures", rows)


def expect_learns(ctx: Any, run: Any, train: Any) -> None:
    """The learning check every RL task shares: the greedy policy beats random across seeds.

    ``run`` has ``agent`` (with ``total_steps``), ``seeds`` and ``min_return``; ``train(agent,
    seed)`` returns ``(log, act)``. Each seed's greedy return is the mean of 5 episodes (seed
    1000); their mean must reach ``min_return`` (random CartPole: about 22).
    """
    import numpy as np

    from kernels.rl.envs import RANDOM_RETURN, evaluate

    evals = [np.mean(evaluate(train(run.agent, ctx.rng_seed + s)[1], 5, 1000)) for s in range(run.seeds)]
    ctx.expect(
        float(np.mean(evals)) >= run.min_return,
        f"greedy returns {[round(float(e), 1) for e in evals]} after {run.agent.total_steps} env steps: mean "
        f"below {run.min_return} (random: about {RANDOM_RETURN})",
        name="learns: above random across seeds",
    )
