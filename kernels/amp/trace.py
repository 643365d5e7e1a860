"""Record which aten ops run and in which dtypes: how two mixed-precision schemes are compared
op for op (``torch.utils._python_dispatch.TorchDispatchMode`` sees every op after autocast
has inserted its casts, backward included).
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class OpRecorder(TorchDispatchMode):
    """Records (aten op name, output dtypes) of every op dispatched while active, in ``ops``."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, tuple[str, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else [out]
        dtypes = tuple(str(o.dtype).replace("torch.", "") for o in outs if isinstance(o, torch.Tensor))
        self.ops.append((func.overloadpacket.__name__, dtypes))
        return out
