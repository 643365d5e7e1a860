"""m3 Fused LayerNorm + Dropout: one pass instead of three.

Compared: ``y = dropout(layer_norm(x) * w + b, p)`` over rows of x (M, N):

* ``eager`` (baseline): ``F.dropout(F.layer_norm(x, (N,), w, b), p)``, torch's RNG;
* ``eager_same_mask``: ``F.layer_norm``, then the Philox mask precomputed (a 1-byte read);
* ``cpp_fused`` (CPU extension), ``triton_fused`` (interpreter on CPU, timed on CUDA) and
  ``cuda_fused`` (CUDA extension, one block per row, Welford, 16-byte loads).

Every fused kernel draws the keep-mask from ``(seed, element index)`` with Philox-4x32-10 as
``tl.rand`` does (kernels/rng/philox.py), never stores it and regenerates it in backward:
that is what lets one reference (``kernels/layers/ln_dropout.py``) check all three.

Check (N = 33, 1000, 4097, a p = 0 case, 3 seeds): every fused kernel and its gradients equal
the reference (float64 LayerNorm, then the Philox mask); ``eager`` is checked for what dropout
must be (zeros, ``layer_norm / (1 - p)`` where kept, a drop rate within 5 sigma of p, the
Philox mask's too); the CUDA source compiles with nvcc for sm_90 (resources recorded).

Bench: GB/s of the minimum bytes (read x, w, b; write y and the per-row mean and rstd a
training forward saves), eager charged the same; ``pct_peak_bw`` against copy bandwidth.

Lesson: LayerNorm + dropout is memory-bound (~10 FLOP and one Philox per element against 2 x
itemsize bytes), so fusing is about passes over memory: eager moves the (M, N) tensor ~3
times, fused once; on a GPU the target is >= 80% of the copy bandwidth. The mask must be
bit-identical across backends, so the counter-based RNG is a written contract. On a CPU the
fused kernel is RNG-bound: ten Philox rounds per element (Salmon et al. 2011, "Parallel
Random Numbers: As Easy as 1, 2, 3") cost one core more than the memory traffic, so it can
beat F.dropout's Bernoulli draw but not LayerNorm plus a mask computed outside the timing.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, capabilities, impl, task
from harness.checks import TOLERANCES, guard_no_alias, guard_not_constant, guard_not_mutated, snapshot
from harness.claims import metric, speedup
from harness.extension_impls import runnable_impls
from harness.gpu_check import worst_elements
from harness.mutants import Mutant, replace_impl
from harness.task import config_label
from kernels.cuda.compile_record import record_compile
from kernels.layers.ln_dropout import drop_rate_ok, fused_autograd_versions, ln_dropout_reference
from kernels.rng import philox


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


# -- wrong kernels (the mutants) -----------------------------------------------------------------
def _shifted_mask(self, x, w, b, p, seed):
    """WRONG: the mask drawn at offset + 1 (element i gets element i+1's draw)."""
    keep = philox.dropout_mask(seed, torch.arange(1, x.numel() + 1), p).view(x.shape)
    return lambda: torch.where(keep, F.layer_norm(x, (x.shape[-1],), w, b) / (1 - p), 0.0)


def _triton_unscaled(self, x, w, b, p, seed):
    """WRONG: the kept values are not scaled by 1 / (1 - p)."""
    from kernels.triton import layernorm_dropout_fwd

    return lambda: layernorm_dropout_fwd(x, w, b, p, seed)[0] * (1 - p)


def _other_mask_backward(x, w, b, p, seed):
    """WRONG: the right forward values, but gradients through the mask of seed + 1."""
    y_fwd, y_bwd = ln_dropout_reference(x, w, b, p, seed), ln_dropout_reference(x, w, b, p, seed + 1)
    return (y_bwd + (y_fwd - y_bwd).detach()).to(x.dtype)


def _wrong_backward_versions(self, device):
    return {**FusedLNDropout.autograd_versions(self, device), "cpp_fused": _other_mask_backward}


def _eager_unscaled(self, x, w, b, p, seed):
    """WRONG: F.dropout's output multiplied back by (1 - p)."""
    return lambda: F.dropout(F.layer_norm(x, (x.shape[-1],), w, b), p) * (1 - p)


_BACKWARD = {"autograd_versions": _wrong_backward_versions}
_BW = "{} fused LN + dropout reaches >= 80% of the measured copy bandwidth (bf16, largest size)"
_ONE_PASS = "one fused pass >= 2x eager LN + dropout (~3 passes over memory)"
_CPU = "on a CPU the Philox-bound fused kernel is still no slower than eager LN + F.dropout"


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
    metrics = {f"{k}.pct_copy_bw": "GB/s at the largest size / copy GB/s, %" for k in ("cuda_fused", "triton_fused")}
    claims = (
        metric("cuda_fused.pct_copy_bw", ">=", 80, text=_BW.format("CUDA"), device="cuda"),
        metric("triton_fused.pct_copy_bw", ">=", 80, text=_BW.format("Triton"), device="cuda"),
        speedup("cuda_fused", over="eager", at_least=2.0, device="cuda", text=_ONE_PASS),
        speedup("cpp_fused", over="eager", at_least=1.0, device="cpu", text=_CPU),
    )
    mutants = (
        replace_impl("mask_offset_plus_one", "the Philox mask shifted by one", "cpp_fused", _shifted_mask),
        replace_impl("triton_unscaled", "kept values not scaled by 1/(1-p)", "triton_fused", _triton_unscaled),
        replace_impl("eager_unscaled", "dropout times 1-p", "eager", _eager_unscaled, match="kept values are LN"),
        Mutant("backward_other_mask", "backward regenerates another mask", _BACKWARD, match="cpp_fused backward"),
    )

    def inputs(self, config, device, dtype, seed):
        # drawn on the device: a gpu-size x (up to 2^28 elements) made on the host costs seconds
        g = torch.Generator(device).manual_seed(seed)
        x = torch.randn(config.m, config.n, generator=g, device=device) * 2 + 0.5  # (M, N), away from 0/1
        w = 1 + 0.1 * torch.randn(config.n, generator=g, device=device)
        b = 0.1 * torch.randn(config.n, generator=g, device=device)
        return x.to(dtype), w.to(dtype), b.to(dtype), config.p, 1000 + seed

    def reference(self, x, w, b, p, seed):
        return ln_dropout_reference(x, w, b, p, seed).to(x.dtype)

    def bytes(self, config, dtype):
        from kernels.cpp.common import layer_norm_dropout_bytes

        itemsize = torch.empty((), dtype=dtype).element_size()
        return layer_norm_dropout_bytes(config.m, config.n, itemsize, stat_itemsize=4)

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
        return fused_autograd_versions(device, triton=capabilities.detect()["triton"])

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
                msg = f"Philox mask drops {frac:.4f} of {kept.numel()} elements, p = {p} (+-{tol:.4f}) {label}"
                ctx.expect(ok, msg, name="Philox mask drops a fraction p")
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
        record_compile(ctx, "layernorm_dropout.cu")

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
            ln_dropout_reference(*leaves64, p, seed).backward(dy.double())
            want = [t.grad.to(ctx.dtype) for t in leaves64]
            for name, fn in fns.items():
                leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
                fn(*leaves, p, seed).backward(dy)
                ctx.sync()
                for gname, leaf, ref in zip(("dx", "dw", "db"), leaves, want):
                    ctx.assert_close(leaf.grad, ref, name=f"{name} backward", where=f"{gname} [{config_label(config)}]")

    # -- bench -----------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        tol, copy = TOLERANCES.get(ctx.dtype), ctx.peak.get("copy_gbps")
        for config in ctx.configs:
            inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            expected = None
            for spec in self.runnable(ctx, bench=True):
                prepared = self.prepare(ctx, spec.name, config)
                if spec.name not in ("eager",):  # verify on the timed inputs before timing them
                    expected = self.reference(*inputs) if expected is None else expected
                    worst = worst_elements(prepared.fn(), expected, rtol=tol.rtol, atol=tol.atol)  # on the device
                    at, name = config_label(config), f"bench inputs: {spec.name}"
                    ctx.assert_close(*worst, name=name, where=at, rtol=tol.rtol, atol=tol.atol)
                ms = ctx.measure(spec.name, prepared, config=config).median_ms
                if copy and config == ctx.configs[-1] and spec.name in ("cuda_fused", "triton_fused"):
                    gbps = self.bytes(config, ctx.dtype) / (ms / 1e3) / 1e9
                    ctx.metric(f"{spec.name}.pct_copy_bw", 100 * gbps / copy)
            del expected
