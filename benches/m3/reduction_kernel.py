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

Check (tiny: 1, 7, 1000 and 2**20 + 3 elements, a 5 x 4099 whole-tensor sum, 33 x 1000 and
7 x 1 last-dim sums; 3 seeded trials): the first trial draws values k/8 with integer k in
[-8, 8], for which every partial sum of up to 2**21 terms is exact in float32, so every
implementation must equal ``torch.sum`` *exactly*, whatever its order of additions; the
other two draw standard normals and compare with a float64 sum with ``atol = 2e-6 *
sqrt(n)`` (n = elements per output): the rounding error of a float32 sum of n normals
grows like sqrt(n); measured here at most 5.5e-4 for n = 2**22 (torch.sum and Triton), so
the bound has ~7x headroom and stays 200x below a single dropped element (|x| ~ 0.8).
The CUDA source compiles with nvcc for sm_90 (registers/shared memory/spills recorded).

Bench: GB/s with bytes = the input read once plus the output written
(``kernels.cpp.common.sum_bytes``); ``pct_peak_bw`` against the measured copy bandwidth
(which counts a read and a write, so a pure read may exceed 100%); ``ceiling_ms_<config>``
is the time the bytes take at that bandwidth: the floor no sum can beat by much.

Lesson: a sum does one add per 4 bytes: it is memory-bound on every device, so the only
goals are to read each byte once, with wide loads, from enough threads to cover memory
latency, and to finish the tree in registers (shuffles) instead of memory. Small inputs
are latency-bound: a second launch and a few microseconds dominate 4 KB.

Figures. This CPU (float32, one thread: ``OMP_NUM_THREADS=1``, 2026-11-29, other jobs sharing
the cores; copy bandwidth 32.6 GB/s with 2 threads): 2**20 + 3 elements (4 MB, cache
resident): torch.sum 0.11 ms (37 GB/s), cpp_sum 0.10 ms (44 GB/s), both above the DRAM copy
rate because the data sits in cache; 2**24 elements (64 MB): torch.sum 12.1 ms (5.6 GB/s),
cpp_sum 11.1 ms (6.1 GB/s, 19% of copy bandwidth; ceiling 2.1 ms); 4096 x 4096 last-dim:
11.8 ms vs 11.1 ms (5.7 and 6.0 GB/s). One core cannot draw DRAM bandwidth alone, and both
sums run at that core's rate: the custom kernel's double accumulators cost nothing visible.
H200: not measured yet.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.checks import guard_no_alias, guard_not_mutated, snapshot
from harness.task import config_label

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


def record_compile(ctx, source_name: str) -> None:
    """Compile ``kernels/cuda/<source_name>`` for sm_90; record success and per-kernel resources
    (the same record as m3.fused_ln_dropout's)."""
    if not ctx.require("nvcc", part=f"nvcc compile of kernels/cuda/{source_name} for sm_90"):
        return
    from kernels import cuda

    src = next(s for s in cuda.KERNEL_SOURCES if s.name == source_name)
    rep = cuda.compile_check(src, arch="sm_90")
    tail = "\n".join(rep.log.splitlines()[-15:])
    ctx.expect(
        rep.success,
        f"nvcc failed on {source_name} (exit {rep.returncode}):\n{tail}",
        name=f"{source_name} compiles for sm_90",
    )
    ctx.expect(
        len(rep.kernels) > 0, f"ptxas reported no kernels for {source_name}", name=f"{source_name} kernels found"
    )
    ctx.table(
        f"ptxas resources, {source_name}, sm_90",
        [
            {
                "kernel": k.short_name,
                "registers": k.registers,
                "smem_bytes": k.shared_bytes,
                "stack_bytes": k.stack_frame_bytes,
                "spill_store_bytes": k.spill_store_bytes,
                "spill_load_bytes": k.spill_load_bytes,
            }
            for k in sorted(rep.kernels, key=lambda k: k.short_name)
        ],
    )
    ctx.metric("nvcc_compile_s", rep.seconds)
    ctx.metric("nvcc_max_registers", max(k.registers for k in rep.kernels))
    ctx.metric("nvcc_max_smem_bytes", max(k.shared_bytes for k in rep.kernels))
    ctx.metric("nvcc_spill_bytes_total", sum(k.spill_store_bytes + k.spill_load_bytes for k in rep.kernels))


def make_input(config: SumConfig, device, dtype, seed: int, exact: bool) -> torch.Tensor:
    """Standard normals, or (``exact``) k/8 for integer k in [-8, 8], whose partial sums are exact.

    Drawn on the device: 2^28 float64 normals made on the host and copied cost seconds of a
    lent GPU's time. On the CPU the draws stay float64, as the figures above were measured.
    """
    device = torch.device(device)
    g = torch.Generator(device).manual_seed(seed)
    if exact:
        return torch.randint(-8, 9, config.shape, generator=g, device=device).to(dtype) / 8
    draw = torch.float64 if device.type == "cpu" else torch.float32
    return torch.randn(config.shape, generator=g, device=device, dtype=draw).to(dtype)


@task("m3.reduction_kernel", seed="m3", title="reduction kernel with shared memory")
class ReductionKernel(Operator):
    __doc__ = __doc__
    gpu_check = True
    sizes = {
        # the large size last: planted bugs fail on the small ones before the interpreter's 2**20
        "tiny": [
            SumConfig((1,)),
            SumConfig((7,)),
            SumConfig((33, 1000), -1),
            SumConfig((7, 1), -1),
            SumConfig((1000,)),
            SumConfig((5, 4099)),
            SumConfig((2**20 + 3,)),
        ],
        "cpu": [SumConfig((2**20 + 3,)), SumConfig((2**24,)), SumConfig((4096, 4096), -1)],
        "gpu": [SumConfig((2**20 + 3,)), SumConfig((2**24,)), SumConfig((2**28,)), SumConfig((32768, 8192), -1)],
    }

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
        """Implementations that can run here: the CPU extension takes CPU tensors only, and an
        extension that fails to build is a skipped part with its reason (the rest still runs)."""
        from kernels import cpp, cuda

        out = []
        for s in ctx.implementations(self, bench=bench):
            why = {"cpp_sum": cpp.build_error, "cuda_sum": cuda.build_error}.get(s.name, lambda: None)
            if ctx.is_cuda and s.name == "cpp_sum":
                ctx.skip_part("implementation cpp_sum", "the CPU extension runs on the cpu device only")
            elif reason := why():
                ctx.skip_part(f"implementation {s.name}", f"extension not built: {reason}")
            else:
                out.append(s)
        return out

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
                    ctx.expect(
                        out.shape == expected.shape and out.dtype == expected.dtype,
                        f"{where}: result {tuple(out.shape)} {out.dtype}, expected "
                        f"{tuple(expected.shape)} {expected.dtype}",
                        name=f"{spec.name}: shape and dtype",
                    )
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
                ctx.assert_close(
                    prepared.fn(), expected, name=f"bench inputs: {spec.name}", where=config_label(config), **tol
                )
                ctx.measure(spec.name, prepared, config=config)
            if copy:
                ctx.metric(
                    f"ceiling_ms_n{config.numel}{'_lastdim' if config.dim is not None else ''}",
                    self.bytes(config, ctx.dtype) / (copy * 1e9) * 1e3,
                )
