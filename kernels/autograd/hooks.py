"""Gradient hooks that log gradients and modify them (scale them) on the way through.

Where a hook can sit (PyTorch docs, "Autograd mechanics: backward hooks execution"):

- a *tensor hook*, ``t.register_hook(fn)``: called during backward with the gradient
  flowing into ``t``; a returned tensor replaces it. On a parameter (a leaf) it runs
  *before* that gradient is accumulated into ``.grad``; on an activation it changes what
  flows on to every earlier layer.
- a *post-accumulate-grad hook*, ``p.register_post_accumulate_grad_hook(fn)`` (torch >= 2.1,
  leaves only): called after ``.grad`` has been accumulated, with the parameter itself.

:class:`GradLogger` registers one hook per named tensor. In ``"tensor"`` mode it first
applies the modification (multiply by ``scale``) and then logs the *result*, i.e. what
autograd passes on, so for a parameter reached once per backward, with ``.grad`` cleared
before, the logged value equals ``.grad`` exactly. Logging before scaling is the classic
bug: the log then disagrees with ``.grad`` by the scale factor.

With gradient accumulation (several backward passes into one ``.grad``) a tensor hook sees
each pass's contribution, not the running ``.grad``; ``"post_accumulate"`` mode logs ``.grad``
itself after every pass (and cannot scale: scaling ``.grad`` in place there would scale the
earlier passes' share again).

Scaling is exact when ``scale`` is a power of two: multiplying a float by 2**k only changes
its exponent (barring overflow/underflow), so an activation-gradient hook with
scale 2**-3 gives every upstream parameter exactly 2**-3 times the unhooked gradient, bit
for bit, through any chain of matmuls and sums. Any other factor is exact at the hooked
tensor but only equal to rounding further upstream ((g s) W != (g W) s in floating point).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

__all__ = ["scale_hook", "GradLogger"]

_KEEP = ("value", "norm")
_MODES = ("tensor", "post_accumulate")


def scale_hook(scale: float) -> Callable[[Tensor], Tensor]:
    """A tensor hook returning ``grad * scale`` (a new tensor; the incoming one is untouched)."""
    scale = float(scale)
    return lambda grad: grad * scale


class GradLogger:
    """Log (and optionally scale) the gradients of named tensors, one entry per backward.

    keep: ``"value"`` stores a detached clone of each gradient (same shape and dtype);
        ``"norm"`` stores its 2-norm as a 0-d float64 tensor (cheap: one reduction).
    scale: None (log only) or a float the gradient is multiplied by *before* it is logged
        and passed on ("tensor" mode only).
    mode: ``"tensor"`` (``register_hook``) or ``"post_accumulate"`` (leaves only, logs ``.grad``).

    ``log[name]`` is the list of logged entries in backward order. Use as a context
    manager, or call :meth:`remove`, to unregister every hook.

    Raises ValueError for an unknown keep/mode, a scale in post_accumulate mode, a
    non-leaf tensor in post_accumulate mode, or a tensor that does not require grad.
    """

    def __init__(self, *, keep: str = "value", scale: float | None = None, mode: str = "tensor"):
        if keep not in _KEEP:
            raise ValueError(f"keep must be one of {_KEEP}, got {keep!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if scale is not None and mode != "tensor":
            raise ValueError(
                "scale needs mode='tensor': scaling .grad in place after accumulation "
                "would rescale earlier backward passes' gradients too"
            )
        self.keep, self.scale, self.mode = keep, (None if scale is None else float(scale)), mode
        self.log: dict[str, list[Tensor]] = {}
        self._handles: list = []

    # ------------------------------------------------------------------ recording
    def _record(self, name: str, grad: Tensor) -> None:
        g = grad.detach()
        entry = g.clone() if self.keep == "value" else torch.linalg.vector_norm(g.double())
        self.log.setdefault(name, []).append(entry)

    def _tensor_hook(self, name: str) -> Callable[[Tensor], Tensor | None]:
        def hook(grad: Tensor) -> Tensor | None:
            if self.scale is not None:
                grad = grad * self.scale  # modify first ...
            self._record(name, grad)  # ... then log what is passed on
            return grad if self.scale is not None else None

        return hook

    def attach(self, name: str, tensor: Tensor) -> GradLogger:
        """Hook ``tensor`` (a parameter or an activation) under ``name``."""
        if not tensor.requires_grad:
            raise ValueError(f"{name}: tensor does not require grad; no gradient will reach a hook")
        if self.mode == "tensor":
            self._handles.append(tensor.register_hook(self._tensor_hook(name)))
        else:
            if not tensor.is_leaf:
                raise ValueError(f"{name}: post_accumulate hooks need a leaf tensor (a parameter)")
            self._handles.append(
                tensor.register_post_accumulate_grad_hook(lambda p, name=name: self._record(name, p.grad))
            )
        return self

    def attach_params(self, named: nn.Module | Iterable[tuple[str, Tensor]]) -> GradLogger:
        """Hook every parameter that requires grad (``module.named_parameters()`` or pairs)."""
        pairs = named.named_parameters() if isinstance(named, nn.Module) else named
        for name, p in pairs:
            if p.requires_grad:
                self.attach(name, p)
        return self

    def attach_output(self, module: nn.Module, name: str) -> GradLogger:
        """Hook the output activation of ``module`` on every forward (tensor mode): a forward
        hook registers a tensor hook on each new output (N, ...) it produces."""
        if self.mode != "tensor":
            raise ValueError("activations are not leaves: attach_output needs mode='tensor'")

        def fwd_hook(mod, args, out):
            if isinstance(out, Tensor) and out.requires_grad:
                out.register_hook(self._tensor_hook(name))

        self._handles.append(module.register_forward_hook(fwd_hook))
        return self

    # ------------------------------------------------------------------ housekeeping
    def clear(self) -> None:
        """Forget the logged entries (hooks stay registered)."""
        self.log = {}

    def remove(self) -> None:
        """Unregister every hook; later backward passes log nothing."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> GradLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
