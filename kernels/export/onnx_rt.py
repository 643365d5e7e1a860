"""Export to ONNX with the dynamo exporter and run the file in ONNX Runtime.

``torch.onnx.export(..., dynamo=True)`` captures the model with ``torch.export`` and
translates the ATen graph to ONNX with onnxscript. Dimensions are static unless named in
``dynamic_shapes``; an example input of size 0 or 1 in a dimension makes ``torch.export``
specialise it (0/1 specialisation: a size-1 dim broadcasts, so it is treated as a constant),
so the example must be >= 2 in every dimension meant to stay free.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from pathlib import Path

import torch


def export_onnx(
    model: torch.nn.Module, example: torch.Tensor, path: Path, *, dynamic_dims: dict[int, str] | None
) -> float:
    """Write ``model`` traced on ``example`` to ``path`` as ONNX; returns the export time in s.

    Args:
        model: in eval mode; one tensor input, one tensor output.
        example: the example input (any dtype the model takes); each dim named in
            ``dynamic_dims`` must be >= 2.
        path: the ``.onnx`` file written.
        dynamic_dims: input dim -> name (``{0: "batch", 1: "seq"}``) kept symbolic in the
            ONNX graph; None exports every dim static.

    Raises:
        ValueError: a dynamic dim whose example size is below 2 (it would be specialised).
    """
    dims = dynamic_dims or {}
    small = {d: example.shape[d] for d in dims if example.shape[d] < 2}
    if small:
        raise ValueError(
            f"example sizes {small} in dynamic dims: torch.export specialises sizes 0 and 1; "
            "use an example >= 2 in every dynamic dimension"
        )
    shapes = ({d: torch.export.Dim(n, min=1, max=4096) for d, n in dims.items()},) if dims else None
    t0 = time.perf_counter()
    # the exporter logs per-op registrations and prints a progress report: keep the record's stdout short
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        level = logging.getLogger("torch.onnx").level
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=shapes, verbose=False)
        finally:
            logging.getLogger("torch.onnx").setLevel(level)
    assert program is not None  # dynamo=True always returns an ONNXProgram
    program.save(str(path))
    return time.perf_counter() - t0


def session(path: Path, threads: int):
    """An ONNX Runtime CPU session on ``path`` with ``threads`` intra-op threads (1 inter-op).

    The thread count should equal ``torch.get_num_threads()`` when timing against eager:
    ORT's default takes every core.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run(sess, x: torch.Tensor) -> torch.Tensor:
    """One inference: ``x`` (a CPU tensor) fed to the session's first input; its first output.

    Raises:
        ValueError: ONNX Runtime refused the input (shape or dtype); the message names the
            graph's declared input and the tensor given.
    """
    inp = sess.get_inputs()[0]
    try:
        out = sess.run(None, {inp.name: x.detach().cpu().numpy()})[0]
    except Exception as e:  # onnxruntime raises its own pybind classes (InvalidArgument, Fail)
        raise ValueError(
            f"ONNX Runtime refused input {tuple(x.shape)} {x.dtype}: the graph declares {inp.name} "
            f"{inp.shape} {inp.type} ({str(e).splitlines()[0][:160]})"
        ) from None
    return torch.from_numpy(out)


def signature(sess) -> tuple[list, str, str]:
    """(input shape with symbolic dims as names, input type, output type) of the session."""
    return list(sess.get_inputs()[0].shape), sess.get_inputs()[0].type, sess.get_outputs()[0].type


def io_types(path: Path) -> tuple[str, str]:
    """Element types of the ONNX file's first input and first output (``"FLOAT"``, ``"DOUBLE"``, ...).

    Raises:
        onnx.checker.ValidationError: the file is not a valid ONNX graph (checked first).
    """
    import onnx

    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    name = onnx.TensorProto.DataType.Name
    return name(graph.graph.input[0].type.tensor_type.elem_type), name(graph.graph.output[0].type.tensor_type.elem_type)
