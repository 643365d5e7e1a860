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

Check (tiny sizes, 3 seeds): vectorized equals looped for every kernel (histogram
counts exactly, on data with values on every bin edge, outside the range and NaN), and
the vectorized versions equal torch's own op where one exists (``torch.cdist``,
``torch.histc``, ``unfold(...).mean``, ``x @ x.T``), so a loop and a vectorized version
that share a bug do not pass together. Bench: the time of each variant per kernel;
``speedup_vs_baseline`` is the loop's time over the vectorized one's.

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

import torch

import kernels.tensor.vectorize as V
from harness import Comparison, Prepared, task
from harness.checks import guard_not_constant
from harness.claims import speedup
from harness.mutants import Mutant
from kernels.tensor.vectorize import KERNELS


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


#: histogram range: randn data, so a few percent fall outside and are ignored
HIST_LO, HIST_HI = -2.5, 2.5


def make_inputs(config: VecConfig, device, dtype, seed: int) -> tuple:
    """Positional arguments of the kernel (tensors created on CPU from ``seed``, then moved)."""
    g = torch.Generator().manual_seed(seed)
    k, n, d = config.kernel, config.n, config.d
    if k == "pairwise_distances":
        # M = N + 3 rows on the right so a transposed result cannot pass
        return (
            torch.randn(n, d, generator=g, dtype=dtype).to(device),
            torch.randn(n + 3, d, generator=g, dtype=dtype).to(device),
        )
    if k == "running_mean":
        return torch.randn(n, d, generator=g, dtype=dtype).to(device), int(config.param)
    if k == "histogram":
        bins = int(config.param)
        x = torch.randn(n, generator=g, dtype=dtype)
        # every bin edge (lo and hi included), and a NaN: the cases an off-by-one gets wrong
        edges = torch.linspace(HIST_LO, HIST_HI, bins + 1, dtype=torch.float64).to(dtype)
        x = torch.cat([x, edges, torch.tensor([float("nan"), HIST_HI + 1.0], dtype=dtype)])
        return x[torch.randperm(x.numel(), generator=g)].to(device), bins, HIST_LO, HIST_HI
    if k == "gram":
        return (torch.randn(n, d, generator=g, dtype=dtype).to(device),)
    if k == "ema":
        return torch.randn(n, d, generator=g, dtype=dtype).to(device), float(config.param)
    raise ValueError(f"unknown kernel {k!r}; one of {sorted(KERNELS)}")


def torch_reference(config: VecConfig, *args) -> torch.Tensor | None:
    """The same function through torch's own op, where torch has one."""
    k = config.kernel
    if k == "pairwise_distances":
        x, y = args
        # compute_mode: cdist's default switches to the ||x||^2+||y||^2-2xy matmul form past 25
        # rows, which cancels for close points; the direct form is what both versions compute
        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    if k == "running_mean":
        x, w = args
        return x.unfold(0, w, 1).mean(-1)  # (T - w + 1, d, w) -> (T - w + 1, d)
    if k == "histogram":
        x, bins, lo, hi = args
        return torch.histc(x.double(), bins, lo, hi).long()
    if k == "gram":
        (x,) = args
        return torch.matmul(x, x.transpose(0, 1))
    return None  # EMA: torch has no op for it; the loop is the reference


# -- wrong vectorizations (the mutants) ----------------------------------------------------------
def _hist_off_by_one(x, bins, lo, hi):
    """WRONG: ceil instead of floor: values on a bin edge go one bin up."""
    v = x.reshape(-1).double()
    v = v[(v >= lo) & (v <= hi)]
    return torch.bincount(((v - lo) * bins / (hi - lo)).ceil().long().clamp(0, bins - 1), minlength=bins)


def _hist_open_top(x, bins, lo, hi):
    """WRONG: the top edge hi itself is dropped."""
    v = x.reshape(-1).double()
    v = v[(v >= lo) & (v < hi)]
    return torch.bincount(((v - lo) * bins / (hi - lo)).floor().long(), minlength=bins)


def _ema_zero_start(x, alpha):
    """WRONG: the scan starts from 0 instead of x[0]."""
    decay = (1 - alpha) ** torch.arange(1, x.shape[0] + 1).view(-1, *[1] * (x.dim() - 1))
    return V.ema_vec(x, alpha) - decay * x[0]


def _wrong(kernel: str, fn, loop_too: bool = False) -> dict:
    """The task with the vectorized (and, with ``loop_too``, the looped) ``kernel`` replaced by ``fn``."""

    def pick(self, variant, name):
        hit = name == kernel and (variant == "vectorized" or loop_too)
        return fn(variant) if hit and loop_too else fn if hit else VectorizeLoops.kernel(self, variant, name)

    return {"kernel": pick}


def _gram_plus_one(variant):
    """WRONG in both versions: a loop and a vectorization sharing a bug."""
    return lambda x: (V.gram_vec(x) if variant == "vectorized" else V.gram_loop(x)) + 1.0


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
        Mutant("hist_off_by_one", "edges binned one up", _wrong("histogram", _hist_off_by_one), match="histogram"),
        Mutant("hist_open_top", "the top edge dropped", _wrong("histogram", _hist_open_top), match="histogram"),
        Mutant(
            "short_running_mean",
            "one window too few",
            _wrong("running_mean", lambda x, w: V.running_mean_vec(x, w)[:-1]),
            match="running_mean",
        ),
        Mutant("ema_zero_start", "the EMA starts from 0", _wrong("ema", _ema_zero_start), match="ema"),
        Mutant(
            "transposed_distances",
            "distances of y to x",
            _wrong("pairwise_distances", lambda x, y: torch.cdist(y, x).T.contiguous()[:, :-1]),
            match="pairwise_distances",
        ),
        Mutant(
            "gram_shared_bug",
            "loop and vectorized both + 1",
            _wrong("gram", _gram_plus_one, loop_too=True),
            match="gram: vectorized == torch",
        ),
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
