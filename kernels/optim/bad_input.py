"""Bad optimizer arguments and the exception torch.optim raises for each: what an own
optimizer must reject the same way.

:func:`bad_input_cases` gives (what, optimizer name, constructor kwargs) for a negative
learning rate, beta1 = 1.0, beta2 = -0.1 and a non-leaf parameter; :func:`torch_error`
is the exception type ``torch.optim.<name>(**kwargs)`` raises (all ValueError in torch 2.13).
"""

from __future__ import annotations

from typing import Any

import torch


def bad_input_cases(dtype: torch.dtype, device: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, optimizer name in torch.optim, constructor kwargs) of each bad call."""
    p = torch.nn.Parameter(torch.ones(3, dtype=dtype, device=device))
    non_leaf = torch.ones(3, dtype=dtype, device=device, requires_grad=True) * 2
    return [
        ("negative learning rate", "SGD", dict(params=[p], lr=-0.1)),
        ("negative learning rate", "Adam", dict(params=[p], lr=-1e-3)),
        ("negative learning rate", "RMSprop", dict(params=[p], lr=-1e-3)),
        ("beta1 = 1.0", "Adam", dict(params=[p], betas=(1.0, 0.999))),
        ("beta2 = -0.1", "AdamW", dict(params=[p], betas=(0.9, -0.1))),
        ("non-leaf parameter", "Adam", dict(params=[non_leaf])),
        ("non-leaf parameter", "SGD", dict(params=[non_leaf], lr=0.1)),
    ]


def torch_error(name: str, kwargs: dict[str, Any]) -> type[Exception]:
    """The exception type ``torch.optim.<name>(**kwargs)`` raises.

    Raises:
        AssertionError: torch accepted the call (the case is not bad input for this torch).
    """
    try:
        getattr(torch.optim, name)(**kwargs)
    except (ValueError, TypeError, RuntimeError) as e:
        return type(e)
    raise AssertionError(f"torch {name} accepted {kwargs}")
