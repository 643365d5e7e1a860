"""``GradFlowRecorder`` (2.08): per-parameter gradient norms recorded by tensor hooks during ``backward``,
kept on the device until read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


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


class SyncingRecorder(GradFlowRecorder):
    """The naive recorder: ``.item()`` in the hook (a host-device sync per layer on a GPU)."""

    def _record(self, name: str, grad: Tensor) -> None:
        self._pending[name] = torch.tensor(torch.linalg.vector_norm(grad).item())
