"""2.07 Cross-entropy by hand.

Cross-entropy from logits x with class dim 1 (or 0 for a single (C,) sample):
loss_i = -sum_c q_ic w_c log_softmax(x_i)_c, where q is the one-hot target, or with label
smoothing eps (Szegedy et al. 2016) q = (1 - eps) one_hot + eps / C; ``ignore_index``
positions contribute nothing, and ``mean`` divides by the summed weight w_{y_i} of the
targets that are not ignored (ATen, aten/src/ATen/native/LossNLL.cpp), not by N.

Compared, each timed as forward *and* backward (fresh leaf for the logits, the loss,
``torch.autograd.grad`` with a fixed upstream gradient; returns (loss, dL/dlogits)), against
``F.cross_entropy`` (the baseline):

* ``own``: ``kernels.layers.losses.cross_entropy``: a max-shifted log-softmax, ``gather`` of the
  target log-probabilities, weights and the ignore mask as multiplications, the smoothing
  term as a class-sum; autograd derives the backward.

Check (float32 table, 3 seeds per config): loss and gradient equal F.cross_entropy's on
(C,), (N, C), (N, C, d1) and (N, C, d1, d2) inputs, every reduction, ignore_index (-100, and
a real class id used as padding), label smoothing with ignored targets present, class
weights, and class-probability targets; ``gradcheck`` and ``gradgradcheck`` in float64 with
weights, smoothing and ignored targets; an all-ignored batch gives NaN for mean as torch
does; mismatched shapes raise ValueError with both shapes in the message; a class index out
of range raises IndexError naming it.

Lesson: the hand version is slower: its log-softmax, gather, masks, weights and smoothing
sum are separate passes whose backward autograd assembles op by op, where ATen fuses
log_softmax and nll_loss forward and backward (``aten/src/ATen/native/LossNLL.cpp``,
``SoftMax.cpp``). The gap narrows with label smoothing, where ATen too falls back to
composite ops (the smoothing sum over classes). Both implementations are timed doing the
same work (forward and backward); the claims bound the gap.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import time_ratio
from harness.mutants import replace_impl
from kernels.autograd.gradcheck import gradcheck_verdict
from kernels.layers.losses import cross_entropy, log_softmax


@dataclasses.dataclass(frozen=True)
class CEConfig:
    """Cross-entropy of logits of ``shape`` (class dim 1, or 0 for a 1-D shape)."""

    shape: tuple[int, ...]
    """logits shape: (C,), (N, C) or (N, C, d1, ..., dk)"""
    reduction: str = "mean"
    """none, mean or sum"""
    ignore_index: int | None = None
    """targets equal to this are ignored (about 1 in 4 set so); None: none ignored (torch's -100 passed)"""
    label_smoothing: float = 0.0
    """eps in [0, 1]"""
    weighted: bool = False
    """pass per-class weights drawn from U(0.5, 1.5)"""
    probs: bool = False
    """class-probability targets (softmax of random logits) instead of class indices"""

    def label(self) -> str:
        parts = ["x".join(map(str, self.shape)), self.reduction]
        if self.ignore_index is not None:
            parts.append(f"ignore={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"ls={self.label_smoothing}")
        if self.weighted:
            parts.append("weighted")
        if self.probs:
            parts.append("probs")
        return ",".join(parts)


def _fwd_bwd(loss_fn, x: torch.Tensor, g: torch.Tensor):
    """(loss, dL/dx) for L = sum(loss * g), through autograd on a fresh leaf sharing x's storage."""
    leaf = x.detach().requires_grad_()
    loss = loss_fn(leaf)
    (dx,) = torch.autograd.grad(loss, leaf, g)
    return loss.detach(), dx


def make_inputs(config: CEConfig, device, dtype, seed: int):
    """(logits, target, weight or None, upstream gradient g, kwargs for the loss)."""
    gen = torch.Generator().manual_seed(seed)
    cdim = 0 if len(config.shape) == 1 else 1
    c = config.shape[cdim]
    x = torch.randn(config.shape, generator=gen, dtype=dtype) * 2
    tshape = config.shape[:cdim] + config.shape[cdim + 1 :]  # the logits' shape without the class dim
    if config.probs:
        target = torch.softmax(torch.randn(config.shape, generator=gen) * 2, cdim).to(dtype)
    else:
        target = torch.randint(0, c, tshape, generator=gen)
        if config.ignore_index is not None:
            drop = torch.rand(tshape, generator=gen) < 0.25
            target = torch.where(drop, torch.tensor(config.ignore_index), target)
    weight = (torch.rand(c, generator=gen, dtype=dtype) + 0.5) if config.weighted else None
    g = torch.randn(tshape if config.reduction == "none" else (), generator=gen, dtype=dtype)
    kwargs = dict(
        reduction=config.reduction,
        label_smoothing=config.label_smoothing,
        ignore_index=-100 if config.ignore_index is None else config.ignore_index,
    )
    return (x.to(device), target.to(device), None if weight is None else weight.to(device), g.to(device), kwargs)


# -- wrong versions, declared as mutants below ------------------------------------------
def _wrong_ce(smooth_ignored: bool = False, mean_by_count: bool = False):
    """Index-target cross-entropy by hand with a switchable bug (probability targets: the right one)."""

    def loss_fn(x, target, weight, reduction, ignore_index, label_smoothing):
        cdim = 0 if x.dim() == 1 else 1
        c = x.shape[cdim]
        logp = log_softmax(x, cdim)
        valid = target != ignore_index
        safe = torch.where(valid, target, 0)
        picked = logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
        w = torch.ones(c, dtype=x.dtype, device=x.device) if weight is None else weight
        w_t = w[safe] * valid
        smooth = -(logp * w.reshape((c,) + (1,) * (x.dim() - cdim - 1))).sum(cdim)
        smooth = smooth if smooth_ignored else smooth * valid  # bug 1: smoothing kept on ignored targets
        loss = (1 - label_smoothing) * (-picked * w_t) + label_smoothing / c * smooth
        if reduction != "mean":
            return loss if reduction == "none" else loss.sum()
        return loss.sum() / (valid.sum() if mean_by_count else w_t.sum())  # bug 2: mean by count, not weight

    def wrong(self, x, target, weight, g, kwargs):
        fn = cross_entropy if target.is_floating_point() else loss_fn
        return lambda: _fwd_bwd(lambda t: fn(t, target, weight, **kwargs), x, g)

    return wrong


@task("autograd.cross_entropy", seed="2.07", title="cross-entropy by hand")
class CrossEntropyTask(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            CEConfig((8, 5)),
            CEConfig((8, 5), "sum", weighted=True),
            CEConfig((6, 4, 3, 2), "none", ignore_index=-100, label_smoothing=0.1, weighted=True),
            CEConfig((6, 4, 3, 2), "mean", ignore_index=-100, label_smoothing=0.2, weighted=True),
            CEConfig((10, 7), "sum", ignore_index=0, label_smoothing=0.1),
            CEConfig((10, 7), "mean", ignore_index=0, label_smoothing=0.3),
            CEConfig((7,), "mean", label_smoothing=0.1, weighted=True),
            CEConfig((5, 6), "mean", label_smoothing=0.1, weighted=True, probs=True),
            CEConfig((5, 6, 3), "none", probs=True),
        ],
        "cpu": [
            CEConfig((4096, 1000)),  # ImageNet-sized classifier head
            CEConfig((256, 32768), ignore_index=-100, label_smoothing=0.1),  # LM tokens over a vocabulary
            CEConfig((8, 21, 128, 128), ignore_index=255),  # segmentation, 255 = unlabelled pixel
        ],
        "gpu": [
            CEConfig((65536, 1000)),
            CEConfig((8192, 131072), ignore_index=-100, label_smoothing=0.1),
            CEConfig((32, 21, 512, 512), ignore_index=255),
        ],
    }
    claims = (
        time_ratio(
            "own",
            to="torch_ce",
            at_most=3.0,
            config="1000,mean",
            text="hand-written cross-entropy within 3x of F.cross_entropy, fwd+bwd, classifier head (C=1000)",
        ),
        time_ratio(
            "own",
            to="torch_ce",
            at_most=2.0,
            config="ls=0.1",
            text="within 2x with label smoothing, where ATen too uses composite ops (C=32768 or 131072)",
        ),
    )
    mutants = (
        replace_impl(
            "smoothing_on_ignored",
            "label smoothing still applied to ignored targets",
            "own",
            _wrong_ce(smooth_ignored=True),
        ),
        replace_impl(
            "mean_by_count",
            "weighted mean divided by the count of targets, not their weight",
            "own",
            _wrong_ce(mean_by_count=True),
        ),
    )

    def inputs(self, config, device, dtype, seed):
        return make_inputs(config, device, dtype, seed)

    def reference(self, x, target, weight, g, kwargs):
        return _fwd_bwd(lambda t: F.cross_entropy(t, target, weight, **kwargs), x, g)

    def bytes(self, config, dtype):
        return (
            2 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()
        )  # read the logits, write their gradient

    @impl(baseline=True)
    def torch_ce(self, x, target, weight, g, kwargs):
        return lambda: _fwd_bwd(lambda t: F.cross_entropy(t, target, weight, **kwargs), x, g)

    @impl
    def own(self, x, target, weight, g, kwargs):
        return lambda: _fwd_bwd(lambda t: cross_entropy(t, target, weight, **kwargs), x, g)

    def extra_checks(self, ctx):
        cfg = CEConfig((5, 4, 3), "mean", ignore_index=1, label_smoothing=0.2, weighted=True)
        for reduction in ("none", "mean"):
            x, target, weight, _, kw = make_inputs(
                dataclasses.replace(cfg, reduction=reduction), ctx.device, torch.float64, ctx.rng_seed
            )
            ok, why = gradcheck_verdict(lambda t: cross_entropy(t, target, weight, **kw), (x.requires_grad_(),))
            ctx.expect(
                ok,
                f"cross_entropy, {cfg.label()}, reduction={reduction}: {why}",
                name="gradcheck + gradgradcheck float64",
            )
        x = torch.randn(4, 5, dtype=ctx.dtype, device=ctx.device)
        all_ignored = torch.full((4,), -100, device=ctx.device)
        own, ref = cross_entropy(x, all_ignored), F.cross_entropy(x, all_ignored)
        ctx.expect(
            bool(torch.isnan(own) and torch.isnan(ref)),
            f"mean over an all-ignored batch: own {own.item()}, torch {ref.item()} (both should be NaN: 0/0)",
            name="all-ignored mean is NaN",
        )
        for name, bad, shape in (
            ("mismatched shapes rejected", torch.zeros(3, dtype=torch.long), "(3,)"),
            ("mismatched probability target rejected", torch.zeros(4, 6), "(4, 6)"),
        ):  # the message names both shapes
            e = ctx.expect_raises(ValueError, lambda: cross_entropy(x, bad), match="(4, 5)", name=name)
            ctx.expect(shape in str(e), f"the shape error names only one shape: {e}", name=name)
        ctx.expect_raises(
            IndexError,
            lambda: cross_entropy(x, torch.tensor([0, 1, 5, 2])),
            match="target 5",
            name="class index out of range rejected",
        )
