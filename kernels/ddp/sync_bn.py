"""Batch norm whose statistics cover the global batch of every rank, on any backend.

``torch.nn.SyncBatchNorm`` computes the batch statistics over all ranks, but only for
GPU inputs (its CUDA kernels gather per-rank means and counts; on a CPU tensor it raises
``ValueError: SyncBatchNorm expected input tensor to be on GPU``). :class:`AllReduceBatchNorm`
computes the same statistics with two differentiable all-reduces, so it runs on gloo
ranks on the CPU too:

    n    = sum_r n_r                       (elements per channel over all ranks)
    mean = sum_r sum(x_r) / n              all-reduce 1: per-channel sums and the count
    var  = sum_r sum((x_r - mean)^2) / n   all-reduce 2: centred squares (biased, as BN)
    y    = (x - mean) / sqrt(var + eps) * weight + bias
    running_var <- (1 - m) running_var + m * var * n / (n - 1)   (unbiased, as BN)

``torch.distributed.nn.functional.all_reduce`` is the autograd-aware all-reduce: its
backward all-reduces the incoming gradient, so each rank's input gradient includes the
other ranks' losses through the shared statistics, as in SyncBatchNorm's own backward
(Ioffe & Szegedy 2015, Sec. 3, for the BN gradient; PyTorch docs, "SyncBatchNorm").
Two passes (mean, then centred squares) instead of E[x^2] - E[x]^2 avoid the
cancellation of the one-pass formula in float32.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over (N, C, ...) whose training statistics span every rank's batch.

    Same parameters, buffers and eval behaviour as ``nn.BatchNorm2d``; in training with an
    initialised process group of world size > 1 the mean and variance are those of the
    concatenated global batch. float32/float64 inputs of any rank >= 2 (C on dim 1).
    """

    #: False: each rank's variance around its *own* mean, averaged (a plausible bug: it
    #: misses the spread between the ranks' means)
    pooled_variance = True

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"AllReduceBatchNorm expects (N, C, ...) input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        synced = self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not synced:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]  # every dim but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)  # (1, C, 1, ...) broadcasts over (N, C, ...)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        sums = dist_fn.all_reduce(torch.cat([x.sum(dims), count]))  # (C + 1,)
        n = sums[-1]
        if self.pooled_variance:
            mean = sums[:-1] / n
            var = dist_fn.all_reduce(((x - mean.view(shape)) ** 2).sum(dims)) / n
        else:
            mean = sums[:-1] / n
            local_var = ((x - x.mean(dims, keepdim=True)) ** 2).mean(dims)
            var = dist_fn.all_reduce(local_var) / dist.get_world_size()
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked.add_(1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class LocalVarianceBatchNorm(AllReduceBatchNorm):
    """WRONG: global mean but the ranks' own variances averaged (drops the between-rank spread)."""

    pooled_variance = False


def convert(module: nn.Module, cls: type[AllReduceBatchNorm] = AllReduceBatchNorm) -> nn.Module:
    """Replace every ``nn.BatchNorm*d`` in ``module`` by ``cls`` with the same state, in place.

    On NCCL ranks prefer ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` (its fused CUDA
    kernels); this works on every backend. Returns ``module`` (or the new layer when
    ``module`` itself is a batch norm).
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        new = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        ref = module.running_mean if module.running_mean is not None else module.weight
        if ref is not None:  # same dtype and device as the layer it replaces
            new = new.to(device=ref.device, dtype=ref.dtype)
        new.load_state_dict(module.state_dict())
        return new.train(module.training)
    for name, child in module.named_children():
        setattr(module, name, convert(child, cls))
    return module
