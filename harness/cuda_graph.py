"""Capture a function of tensors into a CUDA graph once and replay it per call: the host-side
rules a graph imposes, in one wrapper (PyTorch docs, "CUDA Graphs"; used by m4.cuda_graphs).

A graph replays fixed kernels on fixed addresses, so

* inputs live in *static* buffers made at capture; a call copies the new inputs in (a
  wrapper that forgets this replays the old input and returns stale results);
* a call with another shape, dtype or device cannot reuse the graph: it raises (one graph
  per batch size is the usual answer) rather than reading past a buffer;
* outputs are the graph's static output buffers, overwritten by the next call.

``emulate=True`` replays by calling the function on the static buffers: the same host-side
code without CUDA, which is how a CPU checks the wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def _flat(out) -> list[torch.Tensor]:
    """A tensor or a tuple/list of tensors -> list of tensors (TypeError otherwise)."""
    items = list(out) if isinstance(out, (tuple, list)) else [out]
    if not all(isinstance(t, torch.Tensor) for t in items):
        raise TypeError(f"a graphed function must return a tensor or a tuple/list of tensors, got {type(out).__name__}")
    return items


class GraphedCallable:
    """``fn`` captured once into a CUDA graph; calls copy inputs in and replay it.

    Args:
        fn: function of tensors returning a tensor or a tuple/list of tensors. Must be
            capturable: fixed shapes, no host synchronisation (``.item()``, printing a
            tensor), no control flow depending on tensor values. Runs under
            ``torch.no_grad()`` (inference only).
        sample_inputs: tensors fixing each input's shape, dtype and device; cloned into the
            static input buffers.
        warmup: eager calls before capture, on a side stream (lazy initialisation such as
            cuBLAS handles must not happen inside the capture).
        emulate: replay by calling ``fn`` eagerly on the static buffers instead of a graph
            (same host-side behaviour, no CUDA needed). Default: True when the inputs are
            not CUDA tensors.

    Attributes:
        static_inputs: the input buffers (tuple of tensors).
        static_outputs: what every call returns: the graph's output tensor(s), overwritten
            by the next call (clone to keep).

    Raises:
        TypeError: non-tensor sample inputs, or ``fn`` returning something else than tensors.
        ValueError: no inputs, inputs on different devices, or a real capture asked for on
            non-CUDA tensors.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor | Sequence[torch.Tensor]],
        *sample_inputs: torch.Tensor,
        warmup: int = 3,
        emulate: bool | None = None,
    ):
        if not sample_inputs:
            raise ValueError("GraphedCallable needs at least one sample input tensor")
        for i, t in enumerate(sample_inputs):
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"sample input {i} is a {type(t).__name__}, not a tensor; pass tensors only "
                    "(close over other arguments in fn)"
                )
        devices = {t.device for t in sample_inputs}
        if len(devices) != 1:
            raise ValueError(f"sample inputs are on several devices {sorted(map(str, devices))}; use one")
        self.device = devices.pop()
        self.emulate = self.device.type != "cuda" if emulate is None else emulate
        if not self.emulate and self.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs CUDA tensors, the inputs are on {self.device}; use emulate=True")
        self.fn = fn
        self.static_inputs = tuple(t.detach().clone() for t in sample_inputs)
        self.graph = None
        if self.emulate:
            with torch.no_grad():
                out = fn(*self.static_inputs)
            self._single = isinstance(out, torch.Tensor)
            clones = [t.clone() for t in _flat(out)]
            self.static_outputs: Any = clones[0] if self._single else type(out)(clones)  # type: ignore[call-arg]  # a tuple or list
            return
        # warm-up on a side stream, then capture (PyTorch docs, "CUDA Graphs": whole-network capture)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(warmup):
                fn(*self.static_inputs)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            out = fn(*self.static_inputs)
        _flat(out)
        self._single = isinstance(out, torch.Tensor)
        self.static_outputs = out

    def check_inputs(self, inputs: tuple) -> None:
        """Raise TypeError/ValueError unless ``inputs`` match the static buffers one to one."""
        n = len(self.static_inputs)
        if len(inputs) != n:
            raise TypeError(f"the graph was captured with {n} input(s), got {len(inputs)}")
        for i, (x, s) in enumerate(zip(inputs, self.static_inputs)):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"input {i} is a {type(x).__name__}, the graph takes tensors")
            if x.shape != s.shape:
                raise ValueError(
                    f"input {i} has shape {tuple(x.shape)} but the graph was captured for "
                    f"{tuple(s.shape)}; capture one graph per shape (e.g. per batch size)"
                )
            if x.dtype != s.dtype:
                raise TypeError(f"input {i} has dtype {x.dtype} but the graph was captured for {s.dtype}")
            if x.device != s.device:
                raise ValueError(f"input {i} is on {x.device} but the graph's buffers are on {s.device}")

    def __call__(self, *inputs: torch.Tensor):
        """Copy ``inputs`` into the static buffers, replay, return :attr:`static_outputs`."""
        self.check_inputs(inputs)
        for s, x in zip(self.static_inputs, inputs):
            s.copy_(x)  # same stream as the replay: ordered before it
        self.replay()
        return self.static_outputs

    def replay(self) -> None:
        """Run the captured work on whatever the static input buffers hold now."""
        if self.graph is not None:
            self.graph.replay()
            return
        with torch.no_grad():
            out = self.fn(*self.static_inputs)
        for d, o in zip(_flat(self.static_outputs), _flat(out), strict=True):
            d.copy_(o)
