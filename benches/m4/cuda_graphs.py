"""m4 Inference with CUDA graphs.

Compared: the latency of one inference call of a small model, ``eager`` (baseline: every
kernel launched from Python) against ``graphed`` (the whole forward captured once into a
CUDA graph, each call copying its input into the graph's static input buffer and
replaying), across batch sizes 1..64, for two models: an MLP (4 Linear layers, GELU) and a
pre-norm Transformer block (LayerNorm, multi-head attention through
``F.scaled_dot_product_attention``, MLP).

The wrapper, :class:`GraphedCallable`, is what the check is about. Its host-side rules
(PyTorch docs, "CUDA Graphs"): a graph replays fixed kernels on fixed addresses, so

* inputs live in *static* buffers made at capture; a call copies the new inputs in (a
  wrapper that forgets this replays the old input and returns stale results);
* a call with another shape, dtype or device cannot reuse the graph: it raises (one graph
  per batch size is the usual answer) rather than reading past a buffer;
* outputs are the graph's static output buffers, overwritten by the next call.

Check. CPU: the wrapper's argument handling runs with ``emulate=True`` (replay = call the
function on the static buffers), the same host-side code: outputs of several different
inputs equal eager, the same output tensor is returned each call, and wrong argument
count, shape, dtype or a non-tensor raise clear errors. CUDA: the same with real capture
and replay (graph replay equals eager on fresh inputs). Bench (CUDA only): latency of
both per batch size (CUDA events around each call; eager's time includes the GPU waiting
for Python to launch the next kernel, which is the cost graphs remove);
``graph_speedup_b1_<model>`` = eager / graphed at batch 1. Target on an H200: >= 2x at
batch 1 (measured in the report, never asserted).

Lesson: a small model at batch 1 is launch-bound: tens of kernels of a few microseconds
each, and Python plus the launch path costs more per kernel than the kernel runs. A graph
launches them all with one call. The gain shrinks as the batch grows and kernels get long
enough to hide their launches.

Figures. CPU: check only. H200 (gpu size): not measured yet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task

# -- the wrapper ---------------------------------------------------------------------------


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
            self.static_outputs = out.clone() if self._single else type(out)(t.clone() for t in _flat(out))
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
        dst = [self.static_outputs] if self._single else _flat(self.static_outputs)
        for d, o in zip(dst, _flat(out)):
            d.copy_(o)


# -- the models ----------------------------------------------------------------------------


class MLP(nn.Module):
    """(B, d) -> (B, d): Linear d->h, GELU, Linear h->h, GELU, Linear h->h, GELU, Linear h->d."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, d),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Pre-norm Transformer block, (B, T, d) -> (B, T, d): x + attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} must be divisible by heads {heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)  # (B, T, d) each
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, H, T, d/H)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, d/H)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))  # (B, T, d)
        return x + self.mlp(self.ln2(x))


@dataclasses.dataclass(frozen=True)
class GraphConfig:
    """One model at one batch size."""

    model: str
    """``mlp`` or ``block``"""
    batch: int
    """B: samples per call"""
    d: int
    """model width (input features of the MLP, d_model of the block)"""
    hidden: int = 0
    """MLP hidden width (mlp only)"""
    heads: int = 1
    """attention heads (block only)"""
    seq: int = 1
    """T: tokens per sample (block only)"""

    def label(self) -> str:
        if self.model == "mlp":
            return f"mlp d={self.d} h={self.hidden} B={self.batch}"
        return f"block d={self.d} heads={self.heads} T={self.seq} B={self.batch}"


def make_model(config: GraphConfig, device, dtype, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = MLP(config.d, config.hidden) if config.model == "mlp" else Block(config.d, config.heads)
    return m.to(device, dtype).eval()


def make_input(config: GraphConfig, device, dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (config.batch, config.d) if config.model == "mlp" else (config.batch, config.seq, config.d)
    return torch.randn(*shape, generator=g, dtype=dtype).to(device)


_BATCHES = (1, 2, 4, 8, 16, 32, 64)


@task("m4.cuda_graphs", seed="m4", title="inference with CUDA graphs")
class CudaGraphs(Comparison):
    __doc__ = __doc__
    variants = ("eager", "graphed")
    gpu_check = True
    sizes = {
        "tiny": [GraphConfig("mlp", 3, 16, hidden=32), GraphConfig("block", 2, 32, heads=4, seq=5)],
        "gpu": [GraphConfig("mlp", b, 512, hidden=2048) for b in _BATCHES]
        + [GraphConfig("block", b, 512, heads=8, seq=128) for b in _BATCHES],
    }

    def graphed(self, model: nn.Module, sample: torch.Tensor, emulate: bool | None = None) -> GraphedCallable:
        return GraphedCallable(model, sample, emulate=emulate)

    def check(self, ctx) -> None:
        if not ctx.is_cuda:
            ctx.require("cuda", part="real capture and replay (CPU checks the wrapper with emulate=True)")
        for config in ctx.configs:
            model = make_model(config, ctx.device, ctx.dtype, ctx.rng_seed)
            g = self.graphed(model, make_input(config, ctx.device, ctx.dtype, ctx.rng_seed))
            first = None
            for trial in range(1, 4):  # inputs other than the capture's
                x = make_input(config, ctx.device, ctx.dtype, ctx.rng_seed + trial)
                x_before = x.clone()
                with torch.no_grad():
                    expected = model(x)
                out = g(x)
                ctx.sync()
                ctx.assert_close(out, expected, name="graph replay == eager", where=f"{config.label()}, input {trial}")
                ctx.expect(
                    torch.equal(x, x_before),
                    f"{config.label()}: the call modified its input",
                    name="input left unchanged",
                )
                first = out if first is None else first
                ctx.expect(
                    out is first,
                    f"{config.label()}: each call should return the same static output tensor",
                    name="static output buffer reused",
                )
            self._argument_checks(ctx, g, config)

    def _argument_checks(self, ctx, g: GraphedCallable, config: GraphConfig) -> None:
        x = g.static_inputs[0]
        bigger = torch.zeros(x.shape[0] + 1, *x.shape[1:], dtype=x.dtype, device=x.device)
        ctx.expect_raises(ValueError, lambda: g(bigger), match="captured for", name="shape mismatch raises")
        ctx.expect_raises(TypeError, lambda: g(x.to(torch.float64)), match="dtype", name="dtype mismatch raises")
        ctx.expect_raises(TypeError, lambda: g(x, x), match="captured with 1 input", name="argument count checked")
        ctx.expect_raises(TypeError, lambda: g(x.tolist()), match="tensors", name="non-tensor input raises")

    # -- bench -----------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: GraphConfig) -> Prepared:
        model = make_model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        x = make_input(config, ctx.device, ctx.dtype, ctx.rng_seed)
        if impl == "graphed":
            g = self.graphed(model, x)
            return Prepared(fn=lambda: g(x), items=config.batch, item_unit="samples")

        def eager():
            with torch.no_grad():
                return model(x)

        return Prepared(fn=eager, items=config.batch, item_unit="samples")

    def bench(self, ctx) -> None:
        if not ctx.require("cuda", part="latency eager vs graphed across batch sizes 1..64"):
            return
        for config in ctx.configs:
            med = {
                v: ctx.measure(v, self.prepare(ctx, v, config), config=config, mode="warm").median_ms
                for v in self.variants
            }
            speedup = med["eager"] / med["graphed"]
            ctx.metric(f"graph_speedup_b{config.batch}_{config.model}", speedup)
            if config.batch == 1:
                ctx.note(
                    f"{config.label()}: eager {med['eager'] * 1e3:.0f} us, graphed {med['graphed'] * 1e3:.0f} us, "
                    f"{speedup:.2f}x (target >= 2x on an H200)"
                )
        for model in dict.fromkeys(c.model for c in ctx.configs):
            rows = [m for m in ctx.record.measurements if m["config"].startswith(model)]
            for v in self.variants:
                pts = [(int(m["config"].rsplit("B=", 1)[1]), m["median_ms"] * 1e3) for m in rows if m["impl"] == v]
                if pts:
                    ctx.curve(
                        f"{model}: latency vs batch",
                        [p[0] for p in pts],
                        [p[1] for p in pts],
                        x_label="batch",
                        y_label="latency (us)",
                        series=v,
                        log_x=True,
                    )
