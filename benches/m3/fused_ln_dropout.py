"""m3 Fused LayerNorm + Dropout: one pass instead of three.

Compared: ``y = dropout(layer_norm(x) * w + b, p)`` over rows of x (M, N):

* ``eager`` (baseline): ``F.dropout(F.layer_norm(x, (N,), w, b), p)``: two kernels and an
  (M, N) intermediate written and read again, torch's own RNG for the mask;
* ``eager_same_mask``: ``F.layer_norm`` then ``where(mask, y / (1 - p), 0)`` with the Philox
  mask of :mod:`kernels.rng.philox` precomputed (it reads a 1-byte mask instead of drawing one);
* ``cpp_fused``: the CPU C++ extension (:mod:`kernels.cpp`, OpenMP over rows, vectorised
  loops, Philox in-register), CPU only;
* ``triton_fused``: :mod:`kernels.triton` (checked in the Triton interpreter on CPU, timed on
  CUDA only);
* ``cuda_fused``: the CUDA C++ extension (:mod:`kernels.cuda`, one block per row, Welford,
  16-byte vector loads), CUDA only.

Every fused kernel draws the keep-mask from ``(seed, row-major element index)`` with
Philox-4x32-10 exactly as ``tl.rand`` does (kernels/rng/philox.py), never stores it, and the
backward regenerates it: that is what lets one reference check all three backends.

Check (tiny: odd and non-power-of-two N = 33, 1000, 4097, a p = 0 case, 3 seeds):

* the reference path, F.layer_norm in float64 then the Philox mask, is what
  ``eager_same_mask`` computes in the run dtype, and every fused kernel equals it (forward);
  gradients (dx, dw, db) of the Triton (interpreter), CPU-extension and CUDA versions equal
  autograd through the reference;
* ``eager`` uses torch's RNG, so it is checked for what dropout must be: zeros where
  dropped, ``layer_norm * 1/(1-p)`` where kept, a drop fraction within 5 sigma of p (the
  Philox mask is held to the same rate);
* the CUDA source compiles with nvcc for sm_90 (no GPU needed); registers, shared memory,
  stack and spills of every kernel go into a table and ``nvcc_*`` metrics. Skipped, naming
  nvcc, only where nvcc is absent.

Bench: GB/s = bytes / time with bytes = read x (M N), w and b (N each), write y (M N) and
the per-row mean and rstd (M each, 4 bytes) that a training forward saves for the backward
(``kernels.cpp.common.layer_norm_dropout_bytes``): the minimum any implementation of the
training forward must move, so eager is charged the same bytes, not the extra pass it
makes. ``pct_peak_bw`` is against this machine's measured copy bandwidth (read + write of a
large copy). Before timing, each kernel's output on the bench inputs is compared with the
reference once more (on GPU in bfloat16).

Lesson: LayerNorm + dropout is memory-bound (about 10 FLOP and one Philox per element
against 2 x itemsize bytes), so fusing is about passes over memory: eager moves the (M, N)
tensor ~3 times (LN write, dropout read + write, plus the mask), fused once; the target on
an H200 is >= 80% of measured copy bandwidth. The check is what makes fusing safe: the
mask has to be bit-identical across backends, which is why the counter-based RNG is a
written contract (kernels/rng/philox.py), not an implementation detail.

Figures. This CPU (float32, one thread: ``OMP_NUM_THREADS=1``, 2026-11-29, other jobs
sharing the two cores; copy bandwidth 32.6 GB/s measured with 2 threads): at 4096 x 1024,
eager 115 ms (0.29 GB/s), eager_same_mask 28 ms (1.2 GB/s), cpp_fused 47 ms (0.71 GB/s,
2.2% of copy bandwidth), 2.4x faster than eager; at 1024 x 4097, eager 99 ms, same-mask
25 ms, cpp_fused 32 ms (1.07 GB/s), 3.1x. On the CPU the fused kernel is not memory-bound
but RNG-bound: with p = 0 (no Philox drawn) it takes 5.1 ms, the time of a copy of x, so
Philox-4x32-10 costs ~10 ns an element on one core, 9x the memory traffic. It beats
F.dropout (whose Bernoulli draw costs more still) but not LayerNorm plus a mask computed
ahead, which leaves the RNG out of the timed region. H200 (bfloat16): not measured yet;
there ten Philox rounds per element are cheap next to HBM bandwidth, so the target is >= 80%
of measured copy bandwidth.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, capabilities, impl, task
from harness.checks import TOLERANCES, guard_no_alias, guard_not_constant, guard_not_mutated, snapshot
from harness.extension_impls import runnable_impls
from harness.gpu_check import worst_elements
from harness.task import config_label
from kernels.cuda.compile_record import record_compile
from kernels.rng import philox

CUDA_SOURCE = "layernorm_dropout.cu"


@dataclasses.dataclass(frozen=True)
class LNConfig:
    """x (M, N) normalised over N, then dropout with probability p."""

    m: int
    """M: rows"""
    n: int
    """N: normalised size (row length)"""
    p: float = 0.1
    """drop probability"""

    def label(self) -> str:
        return f"M={self.m},N={self.n},p={self.p:g}"


def reference(x, w, b, p: float, seed: int, eps: float = 1e-5) -> torch.Tensor:
    """F.layer_norm in float64, then the Philox keep-mask, scaled; differentiable; returns float64."""
    n = x.shape[-1]
    y = F.layer_norm(x.double(), (n,), w.double(), b.double(), eps)
    if p == 0.0:
        return y
    keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)
    return torch.where(
        keep, y * (0.0 if p == 1.0 else 1.0 / (1.0 - p)), torch.zeros((), dtype=y.dtype, device=y.device)
    )


def drop_rate_ok(kept: torch.Tensor, p: float) -> tuple[bool, float, float]:
    """(within 5 sigma + 1 element of p?, dropped fraction, allowed deviation)."""
    n = kept.numel()
    frac = 1.0 - kept.float().mean().item()
    tol = 5 * math.sqrt(p * (1 - p) / n) + 1.0 / n
    return abs(frac - p) <= tol, frac, tol


@task("m3.fused_ln_dropout", seed="m3", title="fused LayerNorm + Dropout CUDA kernel")
class FusedLNDropout(Operator):
    __doc__ = __doc__
    gpu_check = True
    sizes = {
        "tiny": [LNConfig(7, 33, 0.1), LNConfig(5, 1000, 0.5), LNConfig(3, 4097, 0.2), LNConfig(4, 64, 0.0)],
        "cpu": [LNConfig(4096, 1024), LNConfig(1024, 4097)],
        "gpu": [LNConfig(8192, 1024), LNConfig(16384, 4096), LNConfig(32768, 8192)],
    }
    bench_dtypes = {"cpu": torch.float32, "cuda": torch.bfloat16}

    # -- inputs, reference, work -----------------------------------------------------------
    def inputs(self, config, device, dtype, seed):
        # drawn on the device: a gpu-size x (up to 2^28 elements) made on the host costs seconds
        g = torch.Generator(device).manual_seed(seed)
        x = torch.randn(config.m, config.n, generator=g, device=device) * 2 + 0.5  # (M, N), away from 0/1
        w = 1 + 0.1 * torch.randn(config.n, generator=g, device=device)
        b = 0.1 * torch.randn(config.n, generator=g, device=device)
        return x.to(dtype), w.to(dtype), b.to(dtype), config.p, 1000 + seed

    def reference(self, x, w, b, p, seed):
        return reference(x, w, b, p, seed).to(x.dtype)

    def bytes(self, config, dtype):
        from kernels.cpp.common import layer_norm_dropout_bytes

        itemsize = torch.empty((), dtype=dtype).element_size()
        return layer_norm_dropout_bytes(config.m, config.n, itemsize, stat_itemsize=4)

    # -- implementations -------------------------------------------------------------------
    @impl(baseline=True)
    def eager(self, x, w, b, p, seed):
        return lambda: F.dropout(F.layer_norm(x, (x.shape[-1],), w, b), p, training=True)

    @impl
    def eager_same_mask(self, x, w, b, p, seed):
        keep = philox.dropout_mask(seed, x.numel(), p, device=x.device).view(x.shape)  # outside the timing
        scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
        return lambda: torch.where(keep, F.layer_norm(x, (x.shape[-1],), w, b) * scale, 0.0)

    @impl(requires=("cpp_ext",))
    def cpp_fused(self, x, w, b, p, seed):
        from kernels import cpp

        cpp.load()  # build/load outside the timing
        return lambda: cpp.layer_norm_dropout_forward(x, w, b, p=p, seed=seed)[0]

    @impl(requires=("triton",), bench_requires=("cuda",))
    def triton_fused(self, x, w, b, p, seed):
        from kernels.triton import layernorm_dropout_fwd

        return lambda: layernorm_dropout_fwd(x, w, b, p, seed)[0]

    @impl(requires=("cuda", "nvcc"))
    def cuda_fused(self, x, w, b, p, seed):
        from kernels import cuda

        cuda.load()
        return lambda: cuda.layer_norm_dropout_forward(x, w, b, p=p, seed=seed)[0]

    def autograd_versions(self, device) -> dict:
        """name -> differentiable fused function (x, w, b, p, seed) -> y, for the backward check."""
        out = {}
        if device.type == "cpu":
            from kernels import cpp

            out["cpp_fused"] = cpp.layer_norm_dropout
        if capabilities.detect()["triton"]:
            from kernels.triton import fused_layernorm_dropout

            out["triton_fused"] = fused_layernorm_dropout
        if device.type == "cuda":
            from kernels import cuda

            out["cuda_fused"] = cuda.layer_norm_dropout
        return out

    def runnable(self, ctx, *, bench: bool = False) -> list:
        """Implementations that can run here (a failed extension build is a skipped part)."""
        return runnable_impls(self, ctx, cpp_impl="cpp_fused", cuda_impl="cuda_fused", bench=bench)

    # -- check -----------------------------------------------------------------------------
    def check(self, ctx) -> None:
        specs = self.runnable(ctx)
        for config in ctx.configs:
            for trial in range(self.trials):
                inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed + trial)
                x, w, b, p, seed = inputs
                expected = self.reference(*inputs)
                label = f"[{config_label(config)}, seed {ctx.rng_seed + trial}]"
                kept = philox.dropout_mask(seed, x.numel(), p, device=x.device)
                ok, frac, tol = drop_rate_ok(kept, p)
                ctx.expect(
                    ok,
                    f"Philox mask drops {frac:.4f} of {kept.numel()} elements, p = {p} (+-{tol:.4f}) {label}",
                    name="Philox mask drops a fraction p",
                )
                for spec in specs:
                    before = snapshot(inputs)
                    out = getattr(self, spec.method)(*inputs)()
                    ctx.sync()
                    where = f"{spec.name} {label}"
                    guard_not_mutated(inputs, before, name=where)
                    guard_no_alias(out, inputs, name=where)
                    guard_not_constant(out, expected, name=where)
                    if spec.name == "eager":
                        self._check_torch_dropout(ctx, out, x, w, b, p, where)
                    else:
                        ctx.assert_close(out, expected, name=spec.name, where=where)
        self._check_backward(ctx, [s.name for s in specs])
        self.compile_report(ctx)

    def compile_report(self, ctx) -> None:
        """nvcc compile of the CUDA source for sm_90, resources recorded (see record_compile)."""
        record_compile(ctx, CUDA_SOURCE)

    def _check_torch_dropout(self, ctx, out, x, w, b, p, where: str) -> None:
        """F.dropout draws its own mask: zeros where dropped, LN / (1 - p) where kept, rate p."""
        scaled = F.layer_norm(x.double(), (x.shape[-1],), w.double(), b.double()) * (1.0 / (1.0 - p))
        kept = out != 0
        ctx.assert_close(out[kept], scaled[kept].to(out.dtype), name="eager: kept values are LN / (1 - p)", where=where)
        ok, frac, tol = drop_rate_ok(kept, p)
        ctx.expect(ok, f"{where}: F.dropout dropped {frac:.4f}, p = {p} (+-{tol:.4f})", name="eager: drop rate p")

    def _check_backward(self, ctx, runnable: list[str]) -> None:
        fns = {k: f for k, f in self.autograd_versions(ctx.device).items() if k in runnable}
        for config in ctx.configs:
            x, w, b, p, seed = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed + 7)
            dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(ctx.rng_seed + 8)).to(x.device, x.dtype)
            leaves64 = [t.detach().double().requires_grad_() for t in (x, w, b)]
            reference(*leaves64, p, seed).backward(dy.double())
            want = [t.grad.to(ctx.dtype) for t in leaves64]
            for name, fn in fns.items():
                leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
                fn(*leaves, p, seed).backward(dy)
                ctx.sync()
                for gname, leaf, ref in zip(("dx", "dw", "db"), leaves, want):
                    ctx.assert_close(leaf.grad, ref, name=f"{name} backward", where=f"{gname} [{config_label(config)}]")

    # -- bench -----------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        tol = TOLERANCES.get(ctx.dtype)
        for config in ctx.configs:
            inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            expected = None
            for spec in self.runnable(ctx, bench=True):
                prepared = self.prepare(ctx, spec.name, config)
                if spec.name not in ("eager",):  # verify on the timed inputs before timing them
                    expected = self.reference(*inputs) if expected is None else expected
                    ctx.assert_close(
                        *worst_elements(prepared.fn(), expected, rtol=tol.rtol, atol=tol.atol),  # on the device
                        name=f"bench inputs: {spec.name}",
                        where=config_label(config),
                        rtol=tol.rtol,
                        atol=tol.atol,
                    )
                ctx.measure(spec.name, prepared, config=config)
            del expected
