"""torch.autocast's documented op lists, as probes: (op, input dtype, expected output dtype).

Source: PyTorch docs, "Automatic Mixed Precision package - torch.amp", Autocast Op Reference
(CPU: ops that autocast to bfloat16 / float32; CUDA: to float16 / float32). advanced.amp runs
each probe under ``torch.autocast`` and compares the output dtype with the documented one;
``kernels/amp/probe.py`` is the other direction (the hand policy against torch.autocast).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

#: The low-precision dtype autocast uses per device type.
LOW = {"cpu": torch.bfloat16, "cuda": torch.float16}


def documented_probes(dev: str) -> list[tuple[str, str, torch.dtype]]:
    """(op, input dtype, expected output dtype) from the documented lists; inputs built on ``dev``."""
    low = LOW[dev]
    rows = [(op, "float32", low) for op in ("matmul", "linear", "bmm", "conv2d")]
    rows += [(op, "float32", torch.float32) for op in ("softmax", "log_softmax", "layer_norm")]
    rows += [(op, "low", torch.float32) for op in ("mse_loss", "cross_entropy", "nll_loss")]
    if dev == "cuda":  # on the CUDA float32 list: a float16 input comes back float32
        rows += [(op, "low", torch.float32) for op in ("softmax", "log_softmax", "layer_norm")]
    return rows


def run_op(op: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Call ``op`` on x (4, 8) and integer targets t (4,) (shapes the probes of advanced.amp use)."""
    w, img = x[:, :8].T.contiguous(), x.reshape(1, 2, 4, 4)  # (8, 4); (1, 2, 4, 4)
    calls = {
        "matmul": lambda: x @ w,
        "linear": lambda: F.linear(x, w.T),
        "bmm": lambda: torch.bmm(x[None], w[None]),
        "conv2d": lambda: F.conv2d(img, img[:, :, :3, :3].expand(3, 2, 3, 3).contiguous()),
        "softmax": lambda: F.softmax(x, -1),
        "log_softmax": lambda: F.log_softmax(x, -1),
        "layer_norm": lambda: F.layer_norm(x, (8,)),
        "mse_loss": lambda: F.mse_loss(x, x.flip(0)),
        "cross_entropy": lambda: F.cross_entropy(x, t),
        "nll_loss": lambda: F.nll_loss(x, t),
    }
    return calls[op]()


def probe_dtypes(dev: str, autocast: Callable[[str], Any], generator: torch.Generator) -> tuple[list[dict], list[str]]:
    """Run every :func:`documented_probes` op on ``dev`` inside ``autocast(dev)`` (a context manager
    factory: ``torch.autocast`` or the task's own) on x (4, 8) from ``generator``.

    Returns (table rows: device, op, input and output dtype; one line per op whose output dtype is
    not the documented one, empty when all agree).
    """
    x32 = torch.randn(4, 8, generator=generator).to(dev)
    t = torch.randint(0, 8, (4,), generator=generator).to(dev)
    name = lambda dt: str(dt)[6:]  # noqa: E731 - "torch.float32" -> "float32"
    rows, bad = [], []
    for op, src, want in documented_probes(dev):
        x = x32 if src == "float32" else x32.to(LOW[dev])
        with autocast(dev):
            got = run_op(op, x, t).dtype
        rows.append({"device": dev, "op": op, "input": name(x.dtype), "output": name(got)})
        if got != want:
            bad.append(f"{op}({name(x.dtype)}) -> {name(got)}, documented {name(want)}")
    return rows, bad
