"""Optimizers from scratch as ``torch.optim.Optimizer`` subclasses: SGD, Adam, AdamW, RMSprop.

Each optimizer has two implementations of the same update, chosen by ``foreach``:

- ``foreach=False``: a single-tensor loop (one Python iteration and a few kernels per
  parameter); the readable reference.
- ``foreach=True``: a multi-tensor version built on ``torch._foreach_*`` ops, grouped by
  (device, dtype). One foreach call launches the same op over a whole list of tensors, so
  the Python and kernel-launch overhead is per *group*, not per parameter; this is what
  makes a 100+-tensor model step fast.

Both follow the update rules and op order of ``torch.optim`` (torch/optim/sgd.py, adam.py,
rmsprop.py of torch 2.13) so trajectories match to ~1e-12 in float64. The update math
lives in ``kernels/optim/functional.py``; this file holds hyper-parameter validation, state
initialisation and dispatch.

State is kept in ``self.state[p]`` as in torch (tensors plus an integer ``step``), so
``state_dict()`` / ``load_state_dict()`` from the base class work unchanged, and torch's LR
schedulers drive ``param_groups[i]["lr"]`` as usual.

Errors (same types as torch): negative lr / eps / momentum / weight_decay / alpha,
betas outside [0, 1), Nesterov without momentum or with dampening -> ValueError; a
non-leaf parameter or an empty parameter list -> ValueError (raised by the base class);
sparse gradients -> RuntimeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

import torch
from torch import Tensor

import kernels.optim.functional as F_opt

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "RMSProp"]


def _check_number(name: str, value: Any, *, low: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not value >= low:  # written so that NaN fails too
        raise ValueError(f"Invalid {name} value: {value} (must be >= {low})")


def _check_betas(betas: Any) -> tuple[float, float]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if isinstance(b, bool) or not isinstance(b, Real):
            raise TypeError(f"beta{i + 1} must be a real number, got {type(b).__name__}")
        if not 0.0 <= b < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b} (must be in [0, 1))")
    return float(betas[0]), float(betas[1])


class _HandOptimizer(torch.optim.Optimizer):
    """Shared ``step``: collect the parameters of each group that have a gradient, then
    hand them to the subclass's ``_update(group, params)``. Parameters whose ``.grad`` is
    None are skipped and their state is left untouched (torch does the same)."""

    def _update(self, group: dict, params: list[Tensor]) -> None:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one update to every parameter with a gradient.

        closure: optional callable that re-evaluates the model and returns the loss; it is
        run with gradients enabled, before the update. Returns the closure's loss or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients; use torch.optim.SparseAdam"
                    )
            self._update(group, params)
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """torch.optim's base ``load_state_dict``, then each ``step`` back to a Python int.

        A torch.optim state_dict stores ``step`` as a float32 tensor; left so, ``beta ** step``
        would be computed in float32 and the trajectory would drift ~1e-7 from torch's (which
        reads the step with ``.item()``). Our own state_dicts already hold ints.
        """
        super().load_state_dict(state_dict)
        for st in self.state.values():
            if isinstance(st.get("step"), Tensor):
                st["step"] = int(st["step"].item())


class SGD(_HandOptimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

    Update (torch.optim.SGD docs; Sutskever et al. 2013 for Nesterov):
        g <- grad + weight_decay * p                  (L2: decay enters the gradient)
        b <- g  (first step)  else  b <- momentum * b + (1 - dampening) * g
        g <- g + momentum * b  (nesterov)  else  g <- b
        p <- p - lr * g

    params: iterable of tensors or of dicts (param groups). lr, momentum, dampening,
    weight_decay: non-negative floats. maximize: ascend instead of descend.
    foreach: False -> per-tensor loop; True -> torch._foreach_* multi-tensor version.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = False,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("momentum", momentum)
        _check_number("weight_decay", weight_decay)
        _check_number("dampening", dampening, low=float("-inf"))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list[Tensor]) -> None:
        bufs = [self.state[p].get("momentum_buffer") for p in params]
        fn = F_opt.sgd_foreach if group["foreach"] else F_opt.sgd_single
        fn(
            params,
            [p.grad for p in params],
            bufs,
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        if group["momentum"] != 0:
            for p, b in zip(params, bufs):  # the update functions create buffers on step 1
                self.state[p]["momentum_buffer"] = b


class Adam(_HandOptimizer):
    """Adam (Kingma & Ba 2015) with bias correction, optional AMSGrad and both weight decays.

    Per parameter, step t = 1, 2, ...:
        g <- grad + wd * p                 (L2, decoupled_weight_decay=False)
        p <- p * (1 - lr * wd)             (decoupled, Loshchilov & Hutter 2019, =AdamW)
        m <- beta1 m + (1 - beta1) g ;  v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t) ;  v_hat = v / (1 - beta2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)
    eps is added *outside* the square root and *after* the bias correction, exactly as
    torch computes denom = sqrt(v) / sqrt(1 - beta2^t) + eps (torch/optim/adam.py).
    With amsgrad, v is replaced by the running max of v (Reddi et al. 2018).

    lr, eps, weight_decay >= 0; betas in [0, 1). foreach as for SGD.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("epsilon", eps)
        _check_number("weight_decay", weight_decay)
        betas = _check_betas(betas)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list[Tensor]) -> None:
        amsgrad = group["amsgrad"]
        for p in params:
            st = self.state[p]
            if not st:  # lazy init on the first step that sees a gradient, like torch
                st["step"] = 0
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if amsgrad:
                    st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["step"] += 1
        sts = [self.state[p] for p in params]
        fn = F_opt.adam_foreach if group["foreach"] else F_opt.adam_single
        beta1, beta2 = group["betas"]
        fn(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in sts],
            [s["exp_avg_sq"] for s in sts],
            [s["max_exp_avg_sq"] for s in sts] if amsgrad else None,
            [s["step"] for s in sts],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019); torch's default wd 1e-2.

    Same arguments as ``Adam`` except that decay is always decoupled: p <- p (1 - lr wd)
    before the Adam step, so it never enters the moment estimates.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            foreach=foreach,
            decoupled_weight_decay=True,
        )


class RMSprop(_HandOptimizer):
    """RMSprop (Hinton, Coursera lecture 6e; centered variant from Graves 2013).

        g <- grad + wd * p
        v <- alpha v + (1 - alpha) g^2
        centered:  a <- alpha a + (1 - alpha) g ;  d = sqrt(v - a^2) + eps
        otherwise: d = sqrt(v) + eps
        momentum > 0: b <- momentum b + g / d ;  p <- p - lr b
        otherwise:    p <- p - lr g / d

    lr, alpha, eps, weight_decay, momentum >= 0. foreach as for SGD.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = False,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("epsilon", eps)
        _check_number("momentum", momentum)
        _check_number("weight_decay", weight_decay)
        _check_number("alpha", alpha)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _update(self, group: dict, params: list[Tensor]) -> None:
        for p in params:
            st = self.state[p]
            if not st:
                st["step"] = 0
                st["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["momentum"] > 0:
                    st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["centered"]:
                    st["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["step"] += 1
        sts = [self.state[p] for p in params]
        fn = F_opt.rmsprop_foreach if group["foreach"] else F_opt.rmsprop_single
        fn(
            params,
            [p.grad for p in params],
            [s["square_avg"] for s in sts],
            [s["grad_avg"] for s in sts] if group["centered"] else None,
            [s["momentum_buffer"] for s in sts] if group["momentum"] > 0 else None,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            maximize=group["maximize"],
        )


#: The spelling used in TASKS.md; torch spells it ``RMSprop``.
RMSProp = RMSprop
