"""``gradcheck_verdict``: ``torch.autograd.gradcheck`` + ``gradgradcheck`` as (passed, reason), and
``expect_gradcheck``, the same recorded as a task's check, for the custom Functions of 1.05, 2.01,
2.03, 2.06 and 2.07.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


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


def expect_gradcheck(ctx, fn: Callable[..., Tensor], inputs: tuple, what: str, **kwargs) -> bool:
    """:func:`gradcheck_verdict` recorded as the check ``gradcheck + gradgradcheck float64``
    (``gradcheck float64`` with ``second_order=False``) on ``ctx`` (a harness Context); the
    failure message starts with ``what`` (the Function and the input it failed on).
    Returns whether it passed."""
    ok, why = gradcheck_verdict(fn, inputs, **kwargs)
    name = "gradcheck + gradgradcheck float64" if kwargs.get("second_order", True) else "gradcheck float64"
    ctx.expect(ok, f"{what}: {why}", name=name)
    return ok
