"""ExecuTorch: lower an exported model to a ``.pte`` program and run it in ExecuTorch's runtime.

The flow (ExecuTorch docs, "Exporting to ExecuTorch"): ``torch.export.export`` ->
``executorch.exir.to_edge_transform_and_lower`` (Edge dialect; with ``XnnpackPartitioner``
the supported subgraphs become XNNPACK delegate calls) -> ``to_executorch()`` (memory
planning, serialisation) -> ``.pte`` flatbuffer. Without a partitioner every operator runs on
ExecuTorch's *portable* kernels: plain C++ reference loops written for coverage and size,
not speed. ``executorch.runtime`` loads the same bytes a phone app would.

Importing executorch costs seconds (it pulls in its compiler stack): this module imports it
inside the functions.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

#: Edge operators a CPU delegate must run (substrings of their names): convolutions and matmuls.
HEAVY_OPS = ("convolution", "addmm", "mm.default", "linear", "bmm")


@dataclasses.dataclass(frozen=True)
class Lowered:
    """A ``.pte`` program and what was delegated.

    Attributes:
        buffer: the serialised program (bytes of the ``.pte`` file).
        delegate_calls: ``executorch_call_delegate`` nodes in the top-level graph.
        other_ops: Edge operator name -> count left outside any delegate (on portable kernels).
    """

    buffer: bytes
    delegate_calls: int
    other_ops: dict[str, int]

    def left_out(self, kinds: Iterable[str] = HEAVY_OPS) -> dict[str, int]:
        """The operators outside any delegate whose names contain one of ``kinds`` -> count."""
        return {o: n for o, n in self.other_ops.items() if any(k in o for k in kinds)}


def lower(model: torch.nn.Module, example: torch.Tensor, *, backend: str, dynamic_shapes: Any = None) -> Lowered:
    """Export ``model`` on ``example`` and lower it for ``backend`` (``xnnpack`` or ``portable``).

    Raises:
        ValueError: an unknown backend.
    """
    from executorch.exir import to_edge_transform_and_lower

    if backend not in ("xnnpack", "portable"):
        raise ValueError(f"unknown ExecuTorch backend {backend!r}; use 'xnnpack' or 'portable'")
    ep = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
    parts = []
    if backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        parts = [XnnpackPartitioner()]
    edge = to_edge_transform_and_lower(ep, partitioner=parts)
    calls, other = 0, collections.Counter()
    for node in edge.exported_program().graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "executorch_call_delegate" in name:
            calls += 1
        elif name != "getitem":
            other[name] += 1
    return Lowered(edge.to_executorch().buffer, calls, dict(other))


class PteModule:
    """A ``.pte`` program's ``forward`` loaded in ExecuTorch's runtime, called like a module.

    ``PteModule(buffer_or_path)(x)`` -> the first output, a CPU tensor.
    """

    def __init__(self, source: bytes | Path):
        from executorch.runtime import Runtime

        self.program = Runtime.get().load_program(source)  # bytes or a .pte path
        self.method = self.program.load_method("forward")

    @classmethod
    def written(cls, buffer: bytes, path: Path) -> PteModule:
        """``buffer`` written to the ``.pte`` file ``path`` and the program loaded from that file, as
        an app would load it."""
        path.write_bytes(buffer)
        return cls(path)

    def expected_shape(self) -> tuple[int, ...]:
        """Input 0's shape as planned in the program (the upper bound for a dynamic dim)."""
        return tuple(self.method.metadata.input_tensor_meta(0).sizes())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run forward on ``x``.

        Raises:
            ValueError: the runtime refused the input (a static program given another
                shape); the message names both shapes and the fix.
        """
        try:
            return self.method.execute([x.contiguous()])[0]
        except RuntimeError as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]  # an empty message: the type
            raise ValueError(
                f"this .pte was planned for input shape {self.expected_shape()} and refuses {tuple(x.shape)} "
                f"({first[:120]}); export with dynamic_shapes naming that dim "
                "(torch.export.Dim, example size >= 2) or pad the batch to the planned size"
            ) from None
