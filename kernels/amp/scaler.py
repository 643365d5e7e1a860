"""Dynamic loss scaling by hand, step for step the logic of ``torch.amp.GradScaler``.

Why: float16 gradients underflow (below ~6e-8 they flush to 0), so the loss is multiplied
by a large scale S before backward and the gradients are divided by S before the optimizer
step (Micikevicius et al. 2018, "Mixed Precision Training"). S is adapted on the fly:

- a step whose scaled gradients contain inf/NaN is *skipped* (weights untouched) and
  S <- S * backoff_factor, growth tracker <- 0;
- after ``growth_interval`` consecutive clean steps, S <- S * growth_factor (kept only if
  the result is finite in float32), tracker <- 0.

Exactness notes (checked against GradScaler(device="cpu") in tests/kernels/test_amp.py):
- S is a float32 value; each update multiplies in float64 and rounds to float32, as the
  ATen kernel does (``float * double`` then stored as float): with growth 1.7 from 3.0 the
  scale is 5.0999999 (float32(5.1)), not float32(3.0) * float32(1.7) = 5.1000004.
- The inverse scale is float32(1 / float64(S)), as GradScaler.unscale_.
- The inf/NaN check looks at the *scaled* gradients, before multiplying by 1/S, as
  ``_amp_foreach_non_finite_check_and_unscale_`` does. With S < 1 a finite scaled
  gradient can overflow to inf when unscaled and torch lets it through (seen on torch
  2.13: grad 1e36 at S = 1e-3 puts -inf into the weights). ``check_unscaled=True`` adds a
  second check after unscaling that skips such steps too (then no longer torch-exact).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["DynamicLossScaler"]


def _to_f32(x: float) -> float:
    """Round a Python float (float64) to the nearest float32 value."""
    return float(torch.tensor(x, dtype=torch.float32))


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


class DynamicLossScaler:
    """Loss scaler with the interface of ``torch.amp.GradScaler``.

    init_scale: initial S (float32-rounded). growth_factor: > 1. backoff_factor: in (0, 1).
    growth_interval: clean steps before growing, int >= 1. enabled: False makes every
    method a pass-through (scale() returns outputs, step() just steps).
    check_unscaled: also skip steps whose gradients overflow *when unscaled* (see module doc).
    Raises ValueError for factors or intervals out of range.

    Per iteration:  scaler.scale(loss).backward(); [scaler.unscale_(opt)];
                    scaler.step(opt); scaler.update()
    After ``update()``, ``last_step_skipped`` says whether that iteration's step was skipped
    and ``skipped_steps`` counts skipped steps so far.
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
        *,
        check_unscaled: bool = False,
    ) -> None:
        if not growth_factor > 1.0:
            raise ValueError(f"growth_factor must be > 1.0, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor must be in (0, 1), got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"growth_interval must be an int >= 1, got {growth_interval!r}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.enabled = enabled
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = growth_interval
        self.check_unscaled = check_unscaled
        self._scale = _to_f32(float(init_scale))
        self._growth_tracker = 0
        self._opt_state: dict[int, dict[str, Any]] = {}
        self.last_step_skipped = False
        self.skipped_steps = 0

    # ------------------------------------------------------------------ public API
    def get_scale(self) -> float:
        """Current S as a Python float (1.0 when disabled)."""
        return self._scale if self.enabled else 1.0

    def get_growth_tracker(self) -> int:
        """Consecutive clean steps since the last growth or backoff."""
        return self._growth_tracker

    def scale(self, outputs: Tensor | Iterable[Tensor]):
        """Multiply a tensor (or nested list/tuple of tensors) by S, as a float32 0-d tensor
        on each output's device (so an fp16 loss stays fp16, as with GradScaler)."""
        if not self.enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * torch.full((), self._scale, dtype=torch.float32, device=outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, Iterable):
            return map(self.scale, outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _state(self, optimizer) -> dict[str, Any]:
        return self._opt_state.setdefault(id(optimizer), {"stage": _Stage.READY, "found_inf": False})

    @torch.no_grad()
    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by S in place and record
        whether any scaled gradient was inf/NaN. At most once per optimizer per update();
        RuntimeError otherwise (as GradScaler). ValueError for float16 gradients (keep
        master weights in float32; GradScaler refuses them too)."""
        if not self.enabled:
            return
        st = self._state(optimizer)
        if st["stage"] is _Stage.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = _to_f32(1.0 / self._scale)  # float32(1 / float64(S)), like GradScaler
        grads = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.dtype == torch.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                if g.is_sparse:
                    raise RuntimeError("DynamicLossScaler does not handle sparse gradients")
                grads.append(g)
        # One "all finite?" flag per tensor, reduced on its device, so there is one host
        # sync per device. Checked *before* unscaling, as ATen's
        # _amp_foreach_non_finite_check_and_unscale_ does.
        finite: dict[torch.device, list[Tensor]] = {}
        for g in grads:
            finite.setdefault(g.device, []).append(torch.isfinite(g).all())
        for g in grads:
            g.mul_(torch.full((), inv, dtype=torch.float32, device=g.device))
            if self.check_unscaled:
                finite[g.device].append(torch.isfinite(g).all())
        found = any(not bool(torch.stack(flags).all()) for flags in finite.values())
        st["found_inf"] = found
        st["stage"] = _Stage.UNSCALED

    def step(self, optimizer: torch.optim.Optimizer, *args, **kwargs):
        """Unscale (unless done already), then ``optimizer.step(*args, **kwargs)`` unless an
        inf/NaN was found. Returns the step's return value, or None if skipped."""
        if not self.enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._state(optimizer)
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] is _Stage.READY:
            self.unscale_(optimizer)
        ret = None if st["found_inf"] else optimizer.step(*args, **kwargs)
        st["stage"] = _Stage.STEPPED
        return ret

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adapt S from this iteration's inf checks (all optimizers), or set it to
        ``new_scale``. Must follow at least one unscale_/step (RuntimeError otherwise)."""
        if not self.enabled:
            return
        if new_scale is not None:
            self._scale = _to_f32(float(new_scale))
        else:
            if not self._opt_state:
                raise RuntimeError("No inf checks were recorded prior to update().")
            found = any(st["found_inf"] for st in self._opt_state.values())
            self.last_step_skipped = found
            self.skipped_steps += int(found)
            if found:
                self._scale = _to_f32(self._scale * self.backoff_factor)
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self.growth_interval:
                    grown = self._scale * self.growth_factor
                    # do not grow past the float32 range (ATen keeps the old scale then)
                    if math.isfinite(_to_f32(grown)):
                        self._scale = _to_f32(grown)
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._opt_state = {}

    def state_dict(self) -> dict[str, Any]:
        """Scale, factors, interval and tracker (GradScaler's keys)."""
        if not self.enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self.growth_factor,
            "backoff_factor": self.backoff_factor,
            "growth_interval": self.growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if not state:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler."
            )
        self._scale = _to_f32(float(state["scale"]))
        self.growth_factor = float(state["growth_factor"])
        self.backoff_factor = float(state["backoff_factor"])
        self.growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])
