"""Batch normalization by hand: BatchNorm1d/2d with running statistics and a hand backward.

Source: Ioffe & Szegedy, "Batch Normalization", ICML 2015 (Algorithm 1 and 2), and the
``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` documentation for the running estimates.

Per channel c, with the m = N * (spatial size) values x of that channel in the batch:

* training: mean = sum(x) / m, var = sum((x - mean)^2) / m (biased: used to normalize),
  y = (x - mean) / sqrt(var + eps) * weight + bias;
* running estimates (when ``track_running_stats``), with factor f = ``momentum``, or
  f = 1 / num_batches_tracked when ``momentum`` is None (a cumulative moving average):
  running_mean = (1 - f) running_mean + f mean,
  running_var = (1 - f) running_var + f var * m / (m - 1)   (the *unbiased* variance);
* eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias; without running
  statistics the batch statistics are used in eval too (as torch does).

Backward of the training-mode normalization (:class:`BatchNormFunction`), with
xhat = (x - mean) * invstd and g = dL/dy * weight:
  dL/dx = invstd * (g - mean(g) - xhat * mean(g * xhat)),
  dL/dweight = sum(dL/dy * xhat), dL/dbias = sum(dL/dy),  means and sums over (N, *spatial).

Shape legend: N batch, C channels, L length (1d), H, W (2d). BatchNorm1d takes (N, C) or
(N, C, L); BatchNorm2d takes (N, C, H, W). Parameters ``weight``, ``bias`` (C,); buffers
``running_mean``, ``running_var`` (C,) and ``num_batches_tracked`` (int64 scalar), named as
torch names them, so state dicts load both ways.
"""

from __future__ import annotations

import torch
from torch import nn


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]  # every dim but C


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape(1, -1, *([1] * (x.dim() - 2)))  # (C,) -> (1, C, 1, ...)


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm with the closed-form backward (module docstring).

    forward(x (N, C, *), weight (C,) or None, bias (C,) or None, eps) ->
    (y like x, mean (C,), biased var (C,)); mean and var carry no gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = _reduce_dims(x)
        mean = x.mean(dims, keepdim=True)  # (1, C, 1, ...)
        var = x.var(dims, correction=0, keepdim=True)  # biased: this is what normalizes
        invstd = torch.rsqrt(var + eps)
        xhat = (x - mean) * invstd
        y = xhat
        if weight is not None:
            y = y * _per_channel(weight, x)
        if bias is not None:
            y = y + _per_channel(bias, x)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.has_bias = bias is not None
        mean, var = mean.flatten(), var.flatten()  # (C,)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, gy, _gmean, _gvar):
        xhat, invstd, weight = ctx.saved_tensors
        dims = _reduce_dims(xhat)
        g = gy * _per_channel(weight, gy) if weight is not None else gy
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = invstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        if weight is not None and ctx.needs_input_grad[1]:
            gw = (gy * xhat).sum(dims)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(dims)
        return gx, gw, gb, None


class _BatchNorm(nn.Module):
    """Shared code of :class:`BatchNorm1d` and :class:`BatchNorm2d` (same arguments as torch's)."""

    #: the training-mode normalisation with its hand-written backward (a subclass may swap it)
    autograd_function: type[torch.autograd.Function] = BatchNormFunction

    _dims: tuple[int, ...] = ()
    _shape_doc = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be >= 1, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **kw))
            self.bias = nn.Parameter(torch.zeros(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **kw))
            self.register_buffer("running_var", torch.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected {self._shape_doc} input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): input has {x.shape[1]} channels "
                f"(dim 1) in shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` per channel; see the module docstring for the formulas.

        Raises ValueError for a wrong rank or channel count, and with batch statistics for
        one value per channel (the variance is undefined) or eps <= 0, as torch does.
        """
        self._check_input(x)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            rm, rv = _per_channel(self.running_mean, x), _per_channel(self.running_var, x)
            y = (x - rm) * torch.rsqrt(rv + self.eps)
            if self.affine:
                y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
            return y
        if not self.eps > 0:  # written so that NaN fails too
            raise ValueError(
                f"batch_norm eps must be positive during training, but got {self.eps} "
                f"(pass eps > 0 to {type(self).__name__}, e.g. the default 1e-5)"
            )
        m = x.numel() // x.shape[1]  # values per channel
        if m == 0:  # an empty batch: torch returns it empty, counts the batch, leaves the statistics
            if self.training and self.track_running_stats:
                self.num_batches_tracked.add_(1)
            return x * _per_channel(self.weight, x) + _per_channel(self.bias, x) if self.affine else x.clone()
        if m == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
        y, mean, var = self.autograd_function.apply(x, self.weight, self.bias, self.eps)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(mean, alpha=f)
                self.running_var.mul_(1 - f).add_(var * (m / (m - 1)), alpha=f)  # unbiased
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """``nn.BatchNorm1d`` by hand: input (N, C) or (N, C, L), output the same shape."""

    _dims, _shape_doc = (2, 3), "2D (N, C) or 3D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """``nn.BatchNorm2d`` by hand: input (N, C, H, W), output the same shape."""

    _dims, _shape_doc = (4,), "4D (N, C, H, W)"


def replace_batchnorm(module: nn.Module, classes: tuple[type, type] = (BatchNorm1d, BatchNorm2d)) -> nn.Module:
    """Swap every ``nn.BatchNorm1d``/``nn.BatchNorm2d`` inside ``module`` (in place) for the
    hand-written class (``classes``: the 1d and the 2d one, subclasses of these allowed) with
    the same arguments, parameters and buffers; returns ``module``."""
    for name, child in module.named_children():
        cls = {nn.BatchNorm1d: classes[0], nn.BatchNorm2d: classes[1]}.get(type(child))
        if cls is None:
            replace_batchnorm(child, classes)
            continue
        p = next((t for t in (*child.parameters(), *child.buffers()) if t.is_floating_point()), None)
        new = cls(
            child.num_features,
            child.eps,
            child.momentum,
            child.affine,
            child.track_running_stats,
            device=p.device if p is not None else None,
            dtype=p.dtype if p is not None else None,
        )
        new.load_state_dict(child.state_dict())
        new.train(child.training)
        setattr(module, name, new)
    return module
