"""m3 Reduction kernel with shared memory and warp shuffles.

Compared: a sum over a whole tensor (``dim=None``) or over its last dimension (``dim=-1``):

* ``torch_sum`` (baseline): ``torch.sum``;
* ``cpp_sum``: the CPU C++ extension (:mod:`kernels.cpp`: OpenMP chunks, vectorised inner
  loop, double accumulators), CPU only;
* ``triton_sum``: :mod:`kernels.triton` two-stage sum (checked in the interpreter on CPU,
  timed on CUDA only);
* ``cuda_sum``: :mod:`kernels.cuda`, the classic GPU reduction (Harris, "Optimizing Parallel
  Reduction in CUDA"): a grid-stride loop accumulates in registers, ``__shfl_down_sync``
  reduces within each warp, one value per warp goes through shared memory, the first warp
  reduces those, and a second launch adds the per-block partials (deterministic, no
  atomics); the last-dim sum uses one warp per row.

Check (odd sizes from 1 to 2**20 + 3 elements, whole-tensor and last-dim; 3 seeded trials):
the first trial draws k/8 for integer k in [-8, 8], whose partial sums of up to 2**21 terms
are exact in float32, so every implementation must equal ``torch.sum`` *exactly*, whatever
its order of additions; the others draw normals and compare with a float64 sum within
``atol = 2e-6 * sqrt(n)`` (the rounding error of a float32 sum of n normals grows like
sqrt(n): at most 5.5e-4 seen for n = 2**22, so ~7x headroom, yet 200x below one dropped
element). The CUDA source compiles with nvcc for sm_90 (registers, smem, spills recorded).

Bench: GB/s (the input read once, the output written); ``pct_peak_bw`` against the copy
bandwidth (a read and a write, so a pure read may exceed 100%); ``ceiling_ms_<config>``:
the time the bytes take at that bandwidth, the floor no sum can beat by much.

Lesson: a sum does one add per 4 bytes: it is memory-bound on every device, so the only
goals are to read each byte once, with wide loads, from enough threads to cover memory
latency, and to finish the tree in registers (shuffles) instead of memory. Small inputs
are latency-bound: a second launch and a few microseconds dominate 4 KB.

One CPU core cannot draw DRAM bandwidth alone, so both CPU sums run at its rate; on a GPU
the shuffle reduction should match torch.sum (Harris's kernel 7: ~3/4 of the G80's peak).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.checks import guard_no_alias, guard_not_mutated, snapshot
from harness.claims import time_ratio
from harness.extension_impls import runnable_impls
from harness.mutants import replace_impl
from harness.task import config_label
from kernels.cuda.compile_record import record_compile

CUDA_SOURCE = "reduction.cu"


@dataclasses.dataclass(frozen=True)
class SumConfig:
    """A sum over all of ``shape`` (dim None) or over its last dimension (dim -1)."""

    shape: tuple[int, ...]
    """input shape"""
    dim: int | None = None
    """None: whole-tensor sum (0-d result); -1: sum over the last dimension"""

    def label(self) -> str:
        return f"{'x'.join(map(str, self.shape))} dim={self.dim}"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def reduced(self) -> int:
        """elements summed into each output"""
        return self.numel if self.dim is None else self.shape[-1]


def make_input(config: SumConfig, device, dtype, seed: int, exact: bool) -> torch.Tensor:
    """Standard normals, or (``exact``) k/8 for integer k in [-8, 8], whose partial sums are exact.

    Drawn on the device: 2^28 float64 normals made on the host and copied cost seconds of a
    lent GPU's time. On the CPU the draws stay float64 (the same values as before).
    """
    device = torch.device(device)
    g = torch.Generator(device).manual_seed(seed)
    if exact:
        return torch.randint(-8, 9, config.shape, generator=g, device=device).to(dtype) / 8
    draw = torch.float64 if device.type == "cpu" else torch.float32
    return torch.randn(config.shape, generator=g, device=device, dtype=draw).to(dtype)


# -- wrong sums (the mutants) -------------------------------------------------------------------
def _drops_tail(self, x, dim):
    """WRONG: a block loop that forgets the last partial block (up to 255 trailing elements)."""
    flat = x.reshape(-1)
    return lambda: flat[: max(1, flat.numel() // 256 * 256)].sum() if dim is None else x.sum(dim)


def _drops_last(self, x, dim):
    """WRONG: the last element is never added."""
    return lambda: (x.reshape(-1)[:-1].sum() if x.numel() > 1 else x.sum()) if dim is None else x.sum(dim)


def _fp16_accumulator(self, x, dim):
    """WRONG: accumulates in float16."""
    return lambda: (x.half().sum() if dim is None else x.half().sum(dim)).to(x.dtype)


def _as_double(self, x, dim):
    """WRONG: returns the float64 sum (the right value, the wrong dtype)."""
    return lambda: x.double().sum() if dim is None else x.double().sum(dim)


def _wrong_axis(self, x, dim):
    """WRONG: the last-dim sum reduces over dim 0."""
    return lambda: x.sum() if dim is None else x.sum(0)[: x.shape[0]]


def _vs_torch(impl_name: str, what: str, at_most: float, log2_n: int, device: str):
    """Claim: ``impl_name`` costs at most ``at_most`` x torch.sum on 2^log2_n floats, on ``device``."""
    text = f"{what} within {at_most}x of torch.sum on 2^{log2_n} floats (memory-bound: the same bytes to read)"
    return time_ratio(impl_name, to="torch_sum", at_most=at_most, config=f"{2**log2_n} ", device=device, text=text)


@task("m3.reduction_kernel", seed="m3", title="reduction kernel with shared memory")
class ReductionKernel(Operator):
    __doc__ = __doc__
    gpu_check = True
    sizes = {
        # the large size last: planted bugs fail on the small ones before the interpreter's 2**20
        "tiny": [SumConfig((1,)), SumConfig((7,)), SumConfig((33, 1000), -1), SumConfig((7, 1), -1)]
        + [SumConfig((1000,)), SumConfig((5, 4099)), SumConfig((2**20 + 3,))],
        "cpu": [SumConfig((2**20 + 3,)), SumConfig((2**24,)), SumConfig((4096, 4096), -1)],
        "gpu": [SumConfig((2**20 + 3,)), SumConfig((2**24,)), SumConfig((2**28,)), SumConfig((32768, 8192), -1)],
    }

    claims = (
        _vs_torch("cuda_sum", "CUDA shuffle sum", 1.1, 28, "cuda"),
        _vs_torch("triton_sum", "Triton sum", 1.2, 28, "cuda"),
        _vs_torch("cpp_sum", "own C++ sum", 1.1, 24, "cpu"),
    )
    mutants = (
        replace_impl("drops_tail", "forgets the last partial block", "cpp_sum", _drops_tail),
        replace_impl("drops_last_element", "the last element never added", "triton_sum", _drops_last),
        replace_impl("fp16_accumulator", "accumulates in float16", "cpp_sum", _fp16_accumulator),
        replace_impl(
            "float64_result", "a float64 sum", "cpp_sum", _as_double, match="float64, expected () torch.float32"
        ),
        replace_impl("wrong_axis", "last-dim sum over dim 0", "cpp_sum", _wrong_axis),
    )

    def inputs(self, config, device, dtype, seed):
        return (make_input(config, device, dtype, seed, exact=False), config.dim)

    def reference(self, x, dim):
        return (x.double().sum() if dim is None else x.double().sum(dim)).to(x.dtype)

    def bytes(self, config, dtype):
        itemsize = torch.empty((), dtype=dtype).element_size()
        out = 1 if config.dim is None else config.numel // config.shape[-1]
        return (config.numel + out) * itemsize

    # -- implementations -------------------------------------------------------------------
    @impl(baseline=True)
    def torch_sum(self, x, dim):
        return lambda: x.sum() if dim is None else x.sum(dim)

    @impl(requires=("cpp_ext",))
    def cpp_sum(self, x, dim):
        from kernels import cpp

        cpp.load()
        return lambda: cpp.sum_all(x) if dim is None else cpp.sum_lastdim(x)

    @impl(requires=("triton",), bench_requires=("cuda",))
    def triton_sum(self, x, dim):
        from kernels.triton import triton_sum

        return lambda: triton_sum(x, dim)

    @impl(requires=("cuda", "nvcc"))
    def cuda_sum(self, x, dim):
        from kernels import cuda

        cuda.load()
        return lambda: cuda.sum_all(x) if dim is None else cuda.sum_lastdim(x)

    def runnable(self, ctx, *, bench: bool = False) -> list:
        """Implementations that can run here (a failed extension build is a skipped part)."""
        return runnable_impls(self, ctx, cpp_impl="cpp_sum", cuda_impl="cuda_sum", bench=bench)

    # -- check -----------------------------------------------------------------------------
    def check(self, ctx) -> None:
        specs = self.runnable(ctx)
        for config in ctx.configs:
            for trial in range(self.trials):
                exact = trial == 0
                seed = ctx.rng_seed + trial
                x = make_input(config, ctx.device, ctx.dtype, seed, exact)
                inputs = (x, config.dim)
                if exact:
                    expected = self.torch_sum(*inputs)()
                    tol = {"rtol": 0.0, "atol": 0.0}
                    kind = "exact values, == torch.sum"
                else:
                    expected = self.reference(*inputs)
                    tol = {"rtol": 1.3e-6, "atol": 2e-6 * math.sqrt(config.reduced)}  # see the docstring
                    kind = "normal values, vs float64"
                for spec in specs:
                    before = snapshot(inputs)
                    out = getattr(self, spec.method)(*inputs)()
                    ctx.sync()
                    where = f"{spec.name} [{config_label(config)}, seed {seed}, {kind}]"
                    guard_not_mutated(inputs, before, name=where)
                    guard_no_alias(out, inputs, name=where)
                    same = out.shape == expected.shape and out.dtype == expected.dtype
                    msg = f"{where}: result {tuple(out.shape)} {out.dtype}, expected "
                    msg += f"{tuple(expected.shape)} {expected.dtype}"
                    ctx.expect(same, msg, name=f"{spec.name}: shape and dtype")
                    ctx.assert_close(out, expected, name=f"{spec.name} ({kind.split(',')[0]})", where=where, **tol)
        self.compile_report(ctx)

    def compile_report(self, ctx) -> None:
        record_compile(ctx, CUDA_SOURCE)

    # -- bench -----------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        copy = ctx.peak.get("copy_gbps")
        for config in ctx.configs:
            inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            expected = self.reference(*inputs)
            tol = {"rtol": 1.3e-6, "atol": 2e-6 * math.sqrt(config.reduced)}
            for spec in self.runnable(ctx, bench=True):
                prepared = self.prepare(ctx, spec.name, config)
                at = config_label(config)
                ctx.assert_close(prepared.fn(), expected, name=f"bench inputs: {spec.name}", where=at, **tol)
                ctx.measure(spec.name, prepared, config=config)
            if copy:
                name = f"ceiling_ms_n{config.numel}{'_lastdim' if config.dim is not None else ''}"
                ctx.metric(name, self.bytes(config, ctx.dtype) / (copy * 1e9) * 1e3)
