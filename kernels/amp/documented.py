"""torch.autocast's documented op lists, as probes: (op, input dtype, expected output dtype).

Source: PyTorch docs, "Automatic Mixed Precision package - torch.amp", Autocast Op Reference
(CPU: ops that autocast to bfloat16 / float32; CUDA: to float16 / float32). advanced.amp runs
each probe under ``torch.autocast`` and compares the output dtype with the documented one;
``kernels/amp/probe.py`` is the other direction (the hand policy against torch.autocast).
"""

from __future__ import annotations

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
