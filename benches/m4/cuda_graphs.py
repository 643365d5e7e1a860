"""m4 Inference with CUDA graphs.

Compared: the latency of one inference call of a small model, ``eager`` (baseline: every
kernel launched from Python) against ``graphed`` (the whole forward captured once into a
CUDA graph, each call copying its input into the graph's static input buffer and
replaying), across batch sizes 1..64, for two models: an MLP (4 Linear layers, GELU) and a
pre-norm Transformer block (LayerNorm, multi-head attention through
``F.scaled_dot_product_attention``, MLP).

The wrapper, ``harness.cuda_graph.GraphedCallable``, is what the check is about: static
input buffers a call copies into, one graph per shape (another shape, dtype or device
raises), outputs that are the graph's static buffers (PyTorch docs, "CUDA Graphs").

Check. CPU: the wrapper's argument handling runs with ``emulate=True`` (replay = call the
function on the static buffers), the same host-side code: outputs of several different
inputs equal eager, the same output tensor is returned each call, and wrong argument
count, shape, dtype or a non-tensor raise clear errors. CUDA: the same with real capture
and replay (graph replay equals eager on fresh inputs). Bench (CUDA only): latency of
both per batch size (CUDA events around each call; eager's time includes the GPU waiting
for Python to launch the next kernel, which is the cost graphs remove);
``graph_speedup_b<B>_<model>`` = eager / graphed; the claims read batch 1 and 64.

Lesson: a small model at batch 1 is launch-bound: tens of kernels of a few microseconds
each, and Python plus the launch path costs more per kernel than the kernel runs. A graph
launches them all with one call. The gain shrinks as the batch grows and kernels get long
enough to hide their launches. On a CPU the check runs (emulated replay); the claims are
cuda-only.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import speedup, time_ratio
from harness.cuda_graph import GraphedCallable
from harness.mutants import Mutant
from models.mlp import MLP, MLPConfig
from models.transformer import Block, TransformerConfig


class CausalBlock(Block):
    """``models.transformer.Block`` under a causal mask: (B, T, d) -> (B, T, d)."""

    def forward(self, x):
        return super().forward(x, causal=True)


# -- wrong wrappers (the mutants) ----------------------------------------------------------------
class NoCopy(GraphedCallable):
    """WRONG: replays on the capture's input, never copying the new one in."""

    def __call__(self, *inputs):
        self.check_inputs(inputs)
        self.replay()
        return self.static_outputs


class NoShapeCheck(GraphedCallable):
    """WRONG: no shape check: a bigger batch is silently truncated."""

    def check_inputs(self, inputs):
        if len(inputs) != len(self.static_inputs):
            raise TypeError(f"the graph was captured with {len(self.static_inputs)} input(s)")
        if not all(isinstance(x, torch.Tensor) for x in inputs):
            raise TypeError("tensors only")

    def __call__(self, *inputs):
        self.check_inputs(inputs)
        for s, x in zip(self.static_inputs, inputs, strict=True):
            s.copy_(x[: s.shape[0]].to(s.dtype))
        self.replay()
        return self.static_outputs


class Fresh(GraphedCallable):
    """WRONG: returns a fresh copy of the outputs each call (not the static buffers)."""

    def __call__(self, *inputs):
        return super().__call__(*inputs).clone()


class Aliasing(GraphedCallable):
    """WRONG: writes the output into the caller's input tensor."""

    def __call__(self, *inputs):
        out = super().__call__(*inputs)
        if out.shape == inputs[0].shape:
            inputs[0].copy_(out)
        return out


def _wrapper(cls) -> dict:
    return {"graphed": lambda self, model, sample, emulate=None: cls(model, sample, emulate=emulate)}


_B1 = "CUDA graph replay >= 2x eager at batch 1 ({}: launch-bound, one launch instead of tens)"
_MLP, _BLOCK = "mlp d=512 h=2048 B={}", "block d=512 heads=8 T=128 B=1"
_B64 = "at batch 64 the graph is no slower than eager (MLP: kernels long enough to hide launches)"


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
    if config.model == "mlp":
        m = MLP(MLPConfig(config.d, (config.hidden,) * 3, config.d, activation="gelu"))
    else:
        m = CausalBlock(TransformerConfig(d_model=config.d, n_heads=config.heads, d_ff=4 * config.d))
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

    claims = (
        speedup("graphed", over="eager", at_least=2.0, config=_MLP.format(1), device="cuda", text=_B1.format("MLP")),
        speedup("graphed", over="eager", at_least=2.0, config=_BLOCK, device="cuda", text=_B1.format("block")),
        time_ratio("graphed", to="eager", at_most=1.05, config=_MLP.format(64), device="cuda", text=_B64),
    )
    mutants = (
        Mutant("no_input_copy", "replays on the capture's input", _wrapper(NoCopy), match="graph replay == eager"),
        Mutant("no_shape_check", "bigger batch truncated", _wrapper(NoShapeCheck), match="shape mismatch raises"),
        Mutant("fresh_outputs", "a new output tensor per call", _wrapper(Fresh), match="same static output tensor"),
        Mutant("writes_into_input", "the output copied into the input", _wrapper(Aliasing), match="modified its input"),
    )

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
                    f"{speedup:.2f}x"
                )
        for model in dict.fromkeys(c.model for c in ctx.configs):
            rows = [m for m in ctx.record.measurements if m["config"].startswith(model)]
            for v in self.variants:
                pts = [(int(m["config"].rsplit("B=", 1)[1]), m["median_ms"] * 1e3) for m in rows if m["impl"] == v]
                if pts:
                    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                    name = f"{model}: latency vs batch"
                    ctx.curve(name, xs, ys, x_label="batch", y_label="latency (us)", series=v, log_x=True)
