"""Optimizer benchmark pieces (2.04, 2.05, 2.09): ~10M parameters in 100+ tensors (``bench_parameters``),
the flat parameters after every step of a seeded run (``optimizer_trajectory``) to compare a hand-written
optimizer with ``torch.optim`` step by step, the first step where two trajectories part
(``first_deviation``), that comparison as a task's check (``expect_same_trajectory``, and
``expect_trajectories`` over hyper-parameter cases with a deviation table) and time /
baseline-time ratios from timing rows (``time_ratios``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def bench_parameters(
    n_layers: int, width: int, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> list[torch.nn.Parameter]:
    """Parameters of ``n_layers`` Linear(width, width) layers, each with a random ``.grad``.

    2 * n_layers tensors: weights (width, width) ~ N(0, 1/width) and biases (width,) ~ 0.
    ``n_layers=52, width=440`` gives 10,091,040 parameters in 104 tensors (issue 3's
    "about 10M parameters in 100+ tensors"). Gradients ~ N(0, 1e-2^2).
    """
    g = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(n_layers):
        for shape in ((width, width), (width,)):
            p = torch.randn(*shape, generator=g) / width**0.5 if len(shape) == 2 else torch.zeros(shape)
            p = torch.nn.Parameter(p.to(device=device, dtype=dtype))
            p.grad = (torch.randn(*shape, generator=g) * 1e-2).to(device=device, dtype=dtype)
            params.append(p)
    return params


def optimizer_trajectory(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    batch: int,
    seed: int,
    loss_fn: Callable[[torch.nn.Module, Tensor, Tensor], Tensor] | None = None,
    before_step: Callable[[], None] | None = None,
) -> Tensor:
    """Train ``model`` with ``optimizer`` for ``steps`` mini-batch steps; return the trajectory.

    x (N, F) features and y (N,) class labels; each step draws ``batch`` row indices from a
    CPU generator seeded with ``seed`` (the same batches for every optimizer given the same
    seed), computes ``loss_fn(model, xb, yb)`` (default: cross-entropy of ``model(xb)``),
    zeroes the gradients, runs backward, calls ``before_step()`` if given (e.g. a weight decay
    applied by hand) and ``optimizer.step()``.

    Returns a (steps, P) tensor: row t holds all P parameters, flattened and concatenated in
    ``model.parameters()`` order, after step t + 1.
    """
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen).to(x.device)
        xb, yb = x[idx], y[idx]  # (batch, F), (batch,)
        loss = loss_fn(model, xb, yb) if loss_fn is not None else F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step()
        optimizer.step()
        rows.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return torch.stack(rows)  # (steps, P)


def first_deviation(traj: Tensor, ref: Tensor, *, rtol: float, atol: float) -> str:
    """Where two (steps, P) trajectories first differ beyond rtol/atol, as text for a message."""
    ok = torch.isclose(traj, ref, rtol=rtol, atol=atol).all(dim=1)  # (steps,)
    bad = (~ok).nonzero()
    return (
        f"first deviating step {int(bad[0]) + 1}" if len(bad) else f"no step deviates beyond rtol={rtol}, atol={atol}"
    )


def time_ratios(measurements: list[dict], labels: list[str], baseline: str) -> dict[str, float]:
    """{``time_ratio_<impl>_over_<baseline>_config<i>``: median time / baseline's} from timing rows.

    measurements: rows with ``impl``, ``config`` and ``median_ms`` (a task record's
    measurements); labels: the config labels in preset order (i indexes them). A ratio below
    1 means faster than the baseline (the inverse of the harness's speedup_vs_baseline).
    """
    out = {}
    for i, label in enumerate(labels):
        rows = {m["impl"]: m["median_ms"] for m in measurements if m["config"] == label}
        for impl, ms in rows.items():
            if impl != baseline and rows.get(baseline):
                out[f"time_ratio_{impl}_over_{baseline}_config{i}"] = ms / rows[baseline]
    return out


def expect_same_trajectory(ctx, traj: Tensor, ref: Tensor, *, name: str, where: str) -> float:
    """``ctx.assert_close(traj, ref)`` for two (steps, P) trajectories, the failure naming the first
    deviating step (:func:`first_deviation`) at the task's tolerance for ``ctx.dtype``.

    ctx: a harness Context. Returns the largest |traj - ref|, for a deviation table.
    """
    from harness.checks import tolerance_for

    tol = ctx.task_cls.tolerances.get(ctx.dtype) or tolerance_for(ctx.dtype)
    step = first_deviation(traj, ref, rtol=tol.rtol, atol=tol.atol)
    ctx.assert_close(traj, ref, name=name, where=f"{where}, {step}")
    return float((traj - ref).abs().max())


def expect_trajectories(
    ctx,
    trajectory: Callable[[str, dict], Tensor],
    cases: dict[str, dict],
    variants: tuple[str, ...],
    *,
    reference: str,
    against: str,
    steps: int,
) -> None:
    """Check that ``trajectory(variant, case)`` equals ``trajectory(reference, case)`` step by step
    for every case and variant (:func:`expect_same_trajectory`, checks ``<variant> trajectory =
    <against>``), and record one table row per comparison with its largest deviation.

    ctx: a harness Context. trajectory: (variant, hyper-parameters) -> (steps, P) parameters,
    from the same initial weights and batches for every variant. cases: case name ->
    hyper-parameters. against: what the reference is, in words. Table: ``largest parameter
    deviation from <against> over <steps> steps (<dtype>)``, columns case, variant, dtype,
    steps, max_abs_dev.
    """
    rows, dt = [], str(ctx.dtype).replace("torch.", "")
    for case_name, case in cases.items():
        ref = trajectory(reference, case)
        for variant in variants:
            traj = trajectory(variant, case)
            where = f"{case_name} {case}, {ctx.dtype}"
            dev = expect_same_trajectory(ctx, traj, ref, name=f"{variant} trajectory = {against}", where=where)
            rows.append({"case": case_name, "variant": variant, "dtype": dt, "steps": steps, "max_abs_dev": dev})
    ctx.table(f"largest parameter deviation from {against} over {steps} steps ({dt})", rows)
