"""Small pieces shared by the area-2 (autograd) tasks.

- Linear regression by hand (2.02): ``make_regression`` (a documented synthetic generator),
  ``linreg_loss_and_grads`` (the mean squared error and its hand-derived gradients).
- ``GradFlowRecorder`` (2.08): per-parameter gradient norms recorded by tensor hooks during
  ``backward``, kept on the device until read.
- ``gradcheck_verdict`` (2.01, 2.03, 2.06, 2.07): gradcheck + gradgradcheck as (passed, reason).
- ``bench_parameters`` (2.04, 2.05, 2.09): a list of about 10M parameters in 100+ tensors
  with gradients, the shape of the optimizer benchmarks of issue 3.
- ``optimizer_trajectory`` (2.04, 2.09): the flat parameters after every step of a seeded
  mini-batch run, to compare a hand-written optimizer with ``torch.optim`` step by step;
  ``first_deviation`` names the first step where two trajectories part; ``time_ratios``
  turns a task's timing rows into time / baseline-time ratios.
- Weight decay by hand (2.09): ``l2_decay_`` (decay into the gradient, i.e. L2
  regularisation), ``decoupled_decay_`` (shrink the weights, Loshchilov & Hutter 2019,
  "Decoupled Weight Decay Regularization") and ``l2_penalty`` (the same L2 written as a loss).

Shapes: x (N, D) features, y (N,) targets, w (D,) weights, b () bias.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

__all__ = [
    "make_regression",
    "linreg_predict",
    "linreg_loss_and_grads",
    "GradFlowRecorder",
    "bench_parameters",
    "l2_decay_",
    "decoupled_decay_",
    "l2_penalty",
    "gradcheck_verdict",
    "optimizer_trajectory",
    "first_deviation",
    "time_ratios",
]


# --------------------------------------------------------------------------- linear regression


def make_regression(
    n: int,
    d: int,
    *,
    noise_std: float,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Synthetic regression data with known weights (a generator, not a real data set).

    x ~ N(0, 1) of shape (n, d); w_true ~ N(0, 1) of shape (d,); b_true ~ N(0, 1) 0-d;
    y = x @ w_true + b_true + noise_std * N(0, 1), shape (n,). All from one CPU generator
    seeded with ``seed``, then moved to ``device`` in ``dtype``.

    Returns (x, y, w_true, b_true). Raises ValueError for n < 1, d < 1 or noise_std < 0.
    """
    if n < 1 or d < 1:
        raise ValueError(f"make_regression needs n >= 1 and d >= 1, got n={n}, d={d}")
    if not noise_std >= 0:
        raise ValueError(f"make_regression needs noise_std >= 0, got {noise_std}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    b = torch.randn((), generator=g, dtype=torch.float64)
    y = x @ w + b + noise_std * torch.randn(n, generator=g, dtype=torch.float64)  # (n,)
    return tuple(t.to(device=device, dtype=dtype) for t in (x, y, w, b))  # type: ignore[return-value]


def linreg_predict(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """y_hat = x @ w + b: x (N, D), w (D,), b () -> (N,)."""
    return x @ w + b


def linreg_loss_and_grads(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean squared error L = mean((x w + b - y)^2) and its gradients, by the chain rule.

    With r = x w + b - y (N,): dL/dr = 2 r / N, so dL/dw = x^T (2 r / N) (D,) and
    dL/db = sum(2 r / N) = 2 mean(r) (). No autograd graph is built.

    x (N, D), y (N,), w (D,), b () of one floating dtype. Returns (L, dL/dw, dL/db).
    Raises ValueError when the shapes do not fit together (all four shown).
    """
    if x.dim() != 2 or y.shape != (x.shape[0],) or w.shape != (x.shape[1],) or b.dim() != 0:
        raise ValueError(
            f"linreg_loss_and_grads: need x (N, D), y (N,), w (D,), b (); got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)}"
        )
    r = x @ w + b - y  # (N,)
    dr = r * (2.0 / r.shape[0])  # (N,) dL/dr
    return (r * r).mean(), x.T @ dr, dr.sum()


# --------------------------------------------------------------------------- gradient flow


class GradFlowRecorder:
    """Records ||dL/dp||_2 of each named parameter during backward, through tensor hooks.

    ``p.register_hook(fn)`` calls ``fn(grad)`` with the gradient flowing into the leaf p,
    before it is accumulated into ``p.grad``; when ``.grad`` is cleared before each backward
    (``zero_grad``) and the parameter is used once per backward, that gradient *is* the new
    ``p.grad``, which is what 2.08's check compares against. Norms stay 0-d device tensors
    (no ``.item()`` in the hook: on CUDA each one would be a host sync inside backward);
    ``history()`` stacks and reads them once.

    Usage::

        rec = GradFlowRecorder(model.named_parameters())
        for step ...: opt.zero_grad(); loss.backward(); rec.end_step(); opt.step()
        rec.history()  # {name: [norm at step 0, step 1, ...]}
        rec.remove()

    Raises ValueError when a parameter does not require grad (its hook would never fire).
    """

    def __init__(self, named_parameters: Iterable[tuple[str, Tensor]]):
        self.names: list[str] = []
        self._pending: dict[str, Tensor] = {}
        self._steps: list[dict[str, Tensor]] = []
        self._handles = []
        for name, p in named_parameters:
            if not p.requires_grad:
                raise ValueError(
                    f"GradFlowRecorder: parameter {name!r} does not require grad; pass only trainable parameters"
                )
            self.names.append(name)
            self._handles.append(p.register_hook(self._hook_for(name)))

    def _hook_for(self, name: str) -> Callable[[Tensor], None]:
        # A factory binds `name` now; a lambda in the loop would see the loop's last name
        # (late binding) and file every layer's norm under it.
        def hook(grad: Tensor) -> None:
            self._record(name, grad)

        return hook

    def _record(self, name: str, grad: Tensor) -> None:
        norm = torch.linalg.vector_norm(grad.detach())
        prev = self._pending.get(name)
        # a second gradient for the same leaf in one backward (weight sharing) adds, as .grad does;
        # the norm of a sum is not the sum of norms, so keep that case out of the recorder
        if prev is not None:
            raise RuntimeError(
                f"GradFlowRecorder: {name!r} received two gradients in one step; shared parameters are not supported"
            )
        self._pending[name] = norm

    def end_step(self) -> None:
        """Close the current step: norms recorded since the last call form one entry."""
        self._steps.append(self._pending)
        self._pending = {}

    def history(self) -> dict[str, list[float]]:
        """{name: [norm per step]} as Python floats; NaN where a parameter got no gradient."""
        out: dict[str, list[float]] = {}
        for name in self.names:
            vals = [s.get(name) for s in self._steps]
            got = [v for v in vals if v is not None]
            flat = torch.stack(got).tolist() if got else []
            it = iter(flat)
            out[name] = [next(it) if v is not None else float("nan") for v in vals]
        return out

    def last(self) -> dict[str, Tensor]:
        """Norms of the last closed step, as 0-d tensors."""
        if not self._steps:
            raise RuntimeError("GradFlowRecorder.last(): no step recorded yet; call end_step() after backward")
        return dict(self._steps[-1])

    def remove(self) -> None:
        """Unregister every hook (the recorder then records nothing)."""
        for h in self._handles:
            h.remove()
        self._handles = []


# --------------------------------------------------------------------------- optimizer benchmarks


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


# --------------------------------------------------------------------------- weight decay by hand


@torch.no_grad()
def l2_decay_(params: Iterable[Tensor], weight_decay: float, *, foreach: bool = False) -> None:
    """L2 regularisation through the gradient: grad <- grad + weight_decay * p, in place.

    This is the gradient of (weight_decay / 2) * ||p||^2 added to the loss, and what
    ``torch.optim.SGD(weight_decay=...)`` does before its momentum. Parameters without a
    gradient are skipped. foreach: one ``torch._foreach_add_`` per (device, dtype) group.
    """
    ps = [p for p in params if p.grad is not None]
    if weight_decay == 0 or not ps:
        return
    if foreach:
        from kernels.optim_functional import group_by_device_dtype

        for idx in group_by_device_dtype(ps):
            torch._foreach_add_([ps[i].grad for i in idx], [ps[i] for i in idx], alpha=weight_decay)
    else:
        for p in ps:
            p.grad.add_(p, alpha=weight_decay)


@torch.no_grad()
def decoupled_decay_(params: Iterable[Tensor], lr: float, weight_decay: float, *, foreach: bool = False) -> None:
    """Decoupled weight decay: p <- p * (1 - lr * weight_decay), in place, for p with a gradient.

    Applied before an Adam step without decay this is exactly ``torch.optim.AdamW``: the
    decay never enters Adam's moment estimates, so it is not rescaled by 1 / sqrt(v).
    """
    ps = [p for p in params if p.grad is not None]
    if weight_decay == 0 or not ps:
        return
    factor = 1 - lr * weight_decay
    if foreach:
        from kernels.optim_functional import group_by_device_dtype

        for idx in group_by_device_dtype(ps):
            torch._foreach_mul_([ps[i] for i in idx], factor)
    else:
        for p in ps:
            p.mul_(factor)


def l2_penalty(params: Iterable[Tensor], weight_decay: float) -> Tensor:
    """(weight_decay / 2) * sum ||p||^2 as a 0-d tensor to add to the loss (autograd derives
    weight_decay * p). Raises ValueError for an empty parameter list."""
    ps = list(params)
    if not ps:
        raise ValueError("l2_penalty: no parameters given")
    return 0.5 * weight_decay * sum((p * p).sum() for p in ps)


# --------------------------------------------------------------------------- gradcheck verdicts


def gradcheck_verdict(
    fn: Callable[..., Tensor], inputs: tuple, *, second_order: bool = True, fast_mode: bool = False
) -> tuple[bool, str]:
    """Run ``torch.autograd.gradcheck`` (and ``gradgradcheck``) on ``fn(*inputs)``.

    inputs: float64 tensors, those to differentiate with ``requires_grad=True`` (finite
    differences in float32 are too coarse to check anything). Returns (passed, reason): the
    reason names the failing check and carries the first 400 characters of torch's message,
    so a task can record it with ``ctx.expect(passed, reason)`` instead of crashing.
    Both GradcheckError (wrong derivative) and RuntimeError (e.g. a backward that is not
    differentiable, seen by gradgradcheck) count as failures.
    """
    from torch.autograd.gradcheck import GradcheckError

    checks = [("gradcheck", torch.autograd.gradcheck)]
    if second_order:
        checks.append(("gradgradcheck", torch.autograd.gradgradcheck))
    for name, check in checks:
        try:
            check(fn, inputs, fast_mode=fast_mode)
        except (GradcheckError, RuntimeError) as e:
            return False, f"{name} failed: " + " ".join(str(e).split())[:400]
    return True, ""
