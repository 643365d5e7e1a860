"""m4 Replace Python loops with vectorized tensor ops.

Compared: five kernels of :mod:`kernels.tensor.vectorize`, each written as a Python loop
(``loop``, the baseline) and as tensor code (``vectorized``), on the same inputs:

* ``pairwise_distances``: (N, D) x (M, D) -> (N, M) Euclidean distances; loop over the
  N*M pairs vs one broadcast-and-reduce;
* ``running_mean``: window-w means along T; loop over windows vs a float64 prefix sum;
* ``histogram``: equal-width bin counts; loop over elements vs a bin-index pass + bincount;
* ``gram``: X X^T; loop over the upper triangle of dot products vs one matmul;
* ``ema``: exponential moving average along T; loop over steps vs a log2(T)-round
  Hillis-Steele scan of affine maps.

The check holds each vectorized version to its loop (histogram counts exactly, on data with
values on every bin edge, outside the range and NaN) and both to torch's own op where one exists
(``kernels.tensor.vectorize_cases``), so a loop and a vectorization that share a bug do not pass
together. ``speedup_vs_baseline`` is the loop's time over the vectorized one's.

Lesson: a Python-level trip costs microseconds (indexing, a tiny kernel launch, a
0-dim tensor write); a vectorized version pays that fixed cost a handful of times. The
speedup therefore scales with the number of trips the loop makes, not with the FLOPs:
an O(T log T) scan beats an O(T) loop by orders of magnitude, and the EMA's scan is the
one whose Python cost grows at all (log2 T rounds). Vectorizing is not free: the
distance version materialises an (N, M, D) temporary (D times the output's bytes), and
the running mean needed float64 prefix sums to stay within float32 rounding of the loop.

Small tensor ops on an oversubscribed machine want one thread: each small op split across
OpenMP threads waits at the barrier whenever the OS deschedules one of them (``torch``
docs, "CPU threading and TorchScript inference": intra-op parallelism). On a GPU each trip
of a loop also pays a kernel launch, so the loops only get worse.
"""

from __future__ import annotations

import dataclasses

import kernels.tensor.vectorize_wrong as W
from harness import Comparison, Prepared, task
from harness.checks import guard_not_constant
from harness.claims import speedup
from harness.mutants import Mutant
from kernels.tensor.vectorize import KERNELS
from kernels.tensor.vectorize_cases import make_inputs, torch_reference


@dataclasses.dataclass(frozen=True)
class VecConfig:
    """One kernel of kernels.tensor.vectorize at one size."""

    kernel: str
    """name in kernels.tensor.vectorize.KERNELS"""
    n: int
    """rows N (distances, Gram), length T (running mean, EMA) or element count (histogram)"""
    d: int = 1
    """features D (distances, Gram) or independent series (running mean, EMA); unused by histogram"""
    param: float = 0.0
    """window w (running mean), bins (histogram) or alpha (EMA); unused otherwise"""

    def label(self) -> str:
        extra = {"running_mean": "w", "histogram": "bins", "ema": "alpha"}.get(self.kernel)
        p = f",{extra}={self.param:g}" if extra else ""
        return f"{self.kernel}:n={self.n},d={self.d}{p}"


def _wrong(name: str, what: str, kernel: str, fn, loop_too: bool = False) -> Mutant:
    """A mutant with the vectorized (and, with ``loop_too``, the looped: ``fn(variant)``) ``kernel``
    replaced by ``fn`` from kernels.tensor.vectorize_wrong. The check must fail on that kernel;
    a bug both versions share only against torch's own op."""

    def pick(self, variant, k):
        hit = k == kernel and (variant == "vectorized" or loop_too)
        return fn(variant) if hit and loop_too else fn if hit else VectorizeLoops.kernel(self, variant, k)

    return Mutant(name, what, {"kernel": pick}, match=f"{kernel}: vectorized == torch" if loop_too else kernel)


_TRIPS = "vectorized {} >= {}x its Python loop ({} trips, each microseconds, vs a few ops)"


@task("m4.vectorize_loops", seed="m4", title="replace Python loops with vectorized tensor ops")
class VectorizeLoops(Comparison):
    __doc__ = __doc__
    variants = ("loop", "vectorized")
    sizes = {
        "tiny": [
            VecConfig("pairwise_distances", 9, 5),
            VecConfig("running_mean", 50, 3, 7),
            VecConfig("histogram", 500, param=13),
            VecConfig("gram", 11, 6),
            VecConfig("ema", 64, 3, 0.1),
            VecConfig("ema", 37, 2, 0.9),
        ],
        "cpu": [
            VecConfig("pairwise_distances", 64, 32),
            VecConfig("running_mean", 4096, 16, 64),
            VecConfig("histogram", 100_000, param=64),
            VecConfig("gram", 96, 64),
            VecConfig("ema", 4096, 16, 0.05),
        ],
    }

    claims = (
        speedup("vectorized", over="loop", at_least=50, config="pairwise", text=_TRIPS.format("distances", 50, "N*M")),
        speedup("vectorized", over="loop", at_least=20, config="ema", text=_TRIPS.format("EMA scan", 20, "T")),
        speedup("vectorized", over="loop", at_least=5, config="histogram", text=_TRIPS.format("histogram", 5, "n")),
    )
    mutants = (
        _wrong("hist_off_by_one", "edges binned one up", "histogram", W.hist_off_by_one),
        _wrong("hist_open_top", "the top edge dropped", "histogram", W.hist_open_top),
        _wrong("short_running_mean", "one window too few", "running_mean", W.running_mean_short),
        _wrong("ema_zero_start", "the EMA starts from 0", "ema", W.ema_zero_start),
        _wrong("transposed_distances", "distances of y to x", "pairwise_distances", W.distances_transposed),
        _wrong("gram_shared_bug", "loop and vectorized both + 1", "gram", W.gram_plus_one, loop_too=True),
    )

    def kernel(self, variant: str, name: str):
        """The function of ``variant`` (``loop`` or ``vectorized``) for kernel ``name``."""
        loop, vec = KERNELS[name]
        return {"loop": loop, "vectorized": vec}[variant]

    def check(self, ctx) -> None:
        covered = {c.kernel for c in ctx.configs}
        msg = f"tiny sizes miss kernels {sorted(set(KERNELS) - covered)}"
        ctx.expect(covered >= set(KERNELS), msg, name="every kernel checked")
        for config in ctx.configs:
            for trial in range(3):
                seed = ctx.rng_seed + trial
                args = make_inputs(config, ctx.device, ctx.dtype, seed)
                where = f"{config.label()}, seed {seed}"
                looped = self.kernel("loop", config.kernel)(*args)
                vec = self.kernel("vectorized", config.kernel)(*args)
                guard_not_constant(vec, looped, name=f"vectorized {where}")
                ctx.assert_close(vec, looped, name=f"{config.kernel}: vectorized == loop", where=where)
                ref = torch_reference(config, *args)
                if ref is not None:
                    ctx.assert_close(vec, ref, name=f"{config.kernel}: vectorized == torch", where=where)
                    ctx.assert_close(looped, ref, name=f"{config.kernel}: loop == torch", where=where)

    def prepare(self, ctx, impl: str, config: VecConfig) -> Prepared:
        args = make_inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        fn = self.kernel(impl, config.kernel)
        return Prepared(fn=lambda: fn(*args))
