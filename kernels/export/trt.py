"""What Torch-TensorRT's dynamo path can convert, checked on an export graph without a GPU.

Torch-TensorRT (``torch_tensorrt.compile(model, ir="dynamo")``) exports the model with
``torch.export``, decomposes it to core ATen and converts operator by operator; an operator
without a converter stays in PyTorch and splits the engine. :data:`TRT_CONVERTERS` is a stated
subset of its converter list, :func:`op_table` the per-operator view the report shows, and
:class:`Bucketized` a model with an operator off the list (the fallback the check must name).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import torch

from kernels.export.graph import coverage

#: Core-ATen operators with a converter in Torch-TensorRT's dynamo path (registered with
#: ``dynamo_tensorrt_converter`` in py/torch_tensorrt/dynamo/conversion/aten_ops_converters.py,
#: pytorch/TensorRT 2.x); a stated subset, the operators CNNs and MLPs lower to.
TRT_CONVERTERS = tuple(
    f"aten.{op}"
    for op in (
        "convolution.default", "_native_batch_norm_legit_no_training.default", "native_layer_norm.default",
        "relu.default", "gelu.default", "sigmoid.default", "tanh.default", "hardtanh.default", "_softmax.default",
        "addmm.default", "mm.default", "bmm.default", "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor",
        "mean.dim", "sum.dim_IntList", "amax.default", "avg_pool2d.default", "max_pool2d_with_indices.default",
        "view.default", "reshape.default", "permute.default", "expand.default", "clone.default", "_to_copy.default",
        "cat.default", "slice.Tensor", "select.int", "squeeze.dims", "unsqueeze.default", "where.self", "clamp.default",
        "embedding.default", "rsqrt.default",
    )
)  # fmt: skip
#: Operators that only a training-mode export contains.
TRAINING_OPS = ("aten._native_batch_norm_legit_functional.default", "aten.native_dropout.default")


def op_table(ops: collections.Counter[str], supported: Iterable[str] = TRT_CONVERTERS) -> list[dict]:
    """One row per operator of ``ops`` (as :func:`kernels.export.graph.graph_ops` counts them):
    ``{"op", "count", "TensorRT converter": bool}``, sorted by name, tuple indexing left out."""
    sup = set(supported)
    return [{"op": o, "count": n, "TensorRT converter": o in sup} for o, n in sorted(ops.items()) if o != "getitem"]


def namespace_coverage(ops: Iterable[str], supported: Iterable[str]) -> dict:
    """WRONG (9.09's ``namespace_coverage`` mutant): :func:`coverage` that counts every ``aten.``
    operator as convertible, whatever ``supported`` says."""
    ops = list(ops)
    return coverage(ops, [o for o in ops if o.startswith("aten.")])


def trt_compile(model: torch.nn.Module, x: torch.Tensor):
    """A float32 TensorRT engine of ``model`` (eval mode, on the GPU) for inputs shaped like ``x``,
    built by ``torch_tensorrt.compile(model, ir="dynamo")``; called as ``engine(x)``.

    Needs the ``tensorrt`` capability (torch_tensorrt is imported here, not at module import).
    """
    import torch_tensorrt

    return torch_tensorrt.compile(model, ir="dynamo", inputs=[x], enabled_precisions={torch.float32})


class Bucketized(torch.nn.Module):
    """``net`` behind a feature quantiser: (B, ...) -> ``net(bucketize(x, 9 edges in [-2, 2]))``.

    ``torch.bucketize`` is not on :data:`TRT_CONVERTERS`: the export graph of this model has
    one operator TensorRT would leave to PyTorch.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("edges", torch.linspace(-2, 2, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.bucketize(x, self.edges).float())
