"""What a ``torch.export`` graph contains: its operators, input dtypes and a backend's coverage.

A compiler that takes an ``ExportedProgram`` (Torch-TensorRT's dynamo path, ExecuTorch,
AOTInductor) converts it operator by operator; an operator it has no converter for either
fails the build or falls back to PyTorch, splitting the graph in two engines with a copy
between them. Listing the operators and checking them against the backend's list is the
part of a deployment that needs no GPU.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
from collections.abc import Iterable, Iterator

import torch


def graph_ops(ep: torch.export.ExportedProgram) -> collections.Counter[str]:
    """Operator name (``aten.convolution.default``) -> count, over the graph's call_function nodes.

    Higher-order ops (``torch.cond``) count under their own name; their branches are not
    entered (a backend converts the cond as one unit or not at all).
    """
    out: collections.Counter[str] = collections.Counter()
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        t = node.target
        if isinstance(t, torch._ops.OpOverload):
            out[f"{t.namespace}.{t._opname}.{t._overloadname}"] += 1
        else:  # operator.getitem, higher-order ops
            out[getattr(t, "__name__", str(t))] += 1
    return out


def core_aten(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.export.ExportedProgram, collections.Counter[str]]:
    """``model`` captured by ``torch.export`` on ``(x,)`` and decomposed to core ATen (the graph
    Torch-TensorRT's dynamo path converts), with its :func:`graph_ops` counts.

    Raises what ``torch.export.export`` raises (a data-dependent branch, an untraceable op).
    """
    ep = torch.export.export(model, (x,)).run_decompositions()
    return ep, graph_ops(ep)


def coverage(ops: Iterable[str], supported: Iterable[str], *, ignore: Iterable[str] = ("getitem",)) -> dict:
    """Which ``ops`` a backend converts, by name.

    Args:
        ops: operator names as :func:`graph_ops` gives them.
        supported: names the backend has a converter for.
        ignore: bookkeeping nodes no backend converts (tuple indexing).

    Returns:
        ``{"covered": [...], "missing": [...], "fraction": covered / (covered + missing)}``
        (fraction 1.0 for an empty graph).
    """
    sup, skip = set(supported), set(ignore)
    names = sorted({o for o in ops if o not in skip})
    covered = [o for o in names if o in sup]
    missing = [o for o in names if o not in sup]
    return {"covered": covered, "missing": missing, "fraction": len(covered) / len(names) if names else 1.0}


def input_dtypes(ep: torch.export.ExportedProgram) -> list[torch.dtype]:
    """dtypes of the graph's user inputs (parameters and buffers left out), in order."""
    users = {
        s.arg.name
        for s in ep.graph_signature.input_specs
        if s.kind == torch.export.graph_signature.InputKind.USER_INPUT
    }
    return [n.meta["val"].dtype for n in ep.graph.nodes if n.op == "placeholder" and n.name in users]


@contextlib.contextmanager
def quiet_torch_logs(level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise every ``torch.*`` logger to ``level`` and swallow stderr for the block.

    For an export that is *expected* to fail: torch.export prints the half-traced graph to
    stderr (and logs warnings) before raising, which would fill a run record's stderr tail.
    """
    names = ["torch", *(n for n in logging.root.manager.loggerDict if n.startswith("torch"))]
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(level)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for n, lv in saved.items():
            logging.getLogger(n).setLevel(lv)
