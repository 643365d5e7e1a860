"""1.10 Tensor op speed on CPU vs GPU: where does the GPU start to pay off?

Three ops, each a different kind of work: ``add`` (a + b, memory-bound, n elements),
``sum`` (a full reduction of n elements) and ``matmul`` (n x n @ n x n, compute-bound).

Compared, on the same float32 data (created on the host, as loaded data is):

* ``cpu`` (baseline): the op on CPU tensors.
* ``cuda``: the op on tensors already on the GPU, then ``torch.cuda.synchronize()``:
  the time until the result is ready, launch overhead included.
* ``cuda_with_transfer``: copy the inputs to the GPU, run the op, copy the result back:
  the cost when the data lives on the host and the answer is needed there.

All three are timed with the same wall clock (the harness's CPU timer), because the
question is what the caller waits for; CUDA events would hide the launch and
synchronisation cost that decides the small sizes. The benchmark sweeps sizes on
each device present and records ``crossover_<unit>_<op>_<variant>``: the size from
which the GPU variant stays faster than the CPU (log-log interpolation between the
two sweep points around the crossing). Without a GPU the CPU side is still timed and
the GPU parts are reported as skipped (needs: cuda).

Check: the CPU result and, on a GPU, the GPU result equal a float64 reference within
a rounding-error bound (:func:`error_bound`: u |exact| for add; for a sum of n terms,
and each matmul element with n = K, gamma * sum |terms| with gamma the smaller of the
worst case n u / (1 - n u) (Higham, "Accuracy and Stability of Numerical Algorithms",
2nd ed., 3.1) and the probabilistic 10 sqrt(n) u (Higham & Mary 2019); u = 2**-24 for
float32); the two devices then agree within twice that bound. A GPU matmul in TF32
(allow_tf32=True) exceeds it, and the check says so.

Lesson: a GPU pays off only once the work per call outgrows the fixed cost of
launching and synchronising (and, for host data, of the transfer, which an add can
hardly repay: it moves as many bytes over PCIe as the op reads from memory). So the
crossover should sit at small sizes for matmul (O(n^3) work on O(n^2) data) and much later
for add and sum. CPU side, measured on this shared 2-core CPU VM, one thread
(OMP_NUM_THREADS=1), float32, medians: add 1e3: 1.5 us, 1e5: 40 us (30 GB/s), 1e7:
85 ms (1.4 GB/s: a fresh 40 MB output page-faults here); sum 1e3: 7 us, 1e5: 14 us
(29 GB/s), 1e7: 6.2 ms (6.4 GB/s); matmul 16: 5.2 us, 128: 0.12 ms (34 GFLOP/s), 512:
6.8 ms (39 GFLOP/s). No GPU was available when this was written: the GPU timings and
the crossover sizes have not been measured yet (``drills bench --task
fundamentals.cpu_vs_gpu_speed`` on a GPU machine records them).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.checks import guard_not_constant, guard_not_mutated, snapshot
from harness.context import Context

OPS = {"add": lambda a, b: a + b, "sum": lambda a: a.sum(), "matmul": lambda a, b: a @ b}
#: what ``n`` counts, per op (the unit in the crossover metric's name)
UNITS = {"add": "elements", "sum": "elements", "matmul": "side"}


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    """One op at one size."""

    op: str
    """add, sum or matmul"""
    n: int
    """add/sum: elements; matmul: side of the square matrices"""

    @property
    def label(self) -> str:
        return f"{self.op} n={self.n}"


def error_bound(
    op: str, inputs: tuple[torch.Tensor, ...], ref: torch.Tensor, dtype: torch.dtype, lam: float = 10.0
) -> torch.Tensor:
    """Elementwise bound on |computed - exact| for ``op`` in ``dtype`` (float64 tensor).

    add: one correctly rounded operation, u |exact|. sum and matmul (n terms per
    output): gamma * sum |terms| with gamma the smaller of the worst-case n u / (1 - n u)
    and the probabilistic lam sqrt(n) u of Higham & Mary (SIAM J. Sci. Comput. 41(5),
    2019), which holds for any summation order with probability at least
    1 - 2 n exp(-lam**2 / 2) (about 1e-18 for lam = 10 at these sizes) when rounding
    errors are independent; without it a sum of 4097 terms would hide errors of 1 ulp
    of the largest partial sums.
    """
    u = torch.finfo(dtype).eps / 2  # unit roundoff
    xs = [t.double() for t in inputs]
    if op == "add":
        return u * ref.abs()
    n = xs[0].numel() if op == "sum" else xs[0].shape[-1]
    if n * u >= 0.5:
        raise ValueError(f"{op}: the bound needs n * u < 1/2; n = {n} is too large for {dtype}")
    gamma = min(n * u / (1 - n * u), lam * math.sqrt(n) * u)
    return gamma * (xs[0].abs().sum() if op == "sum" else xs[0].abs() @ xs[1].abs())


def crossover(sizes: list[float], t_cpu: list[float], t_gpu: list[float]) -> float | None:
    """Smallest size from which the GPU stays faster, interpolated in log-log.

    Returns ``sizes[0]`` when the GPU is faster at every size, None when it never
    stays faster up to the largest size.
    """
    ratio = [g / c for g, c in zip(t_gpu, t_cpu)]  # < 1: GPU faster
    if ratio[-1] >= 1:
        return None
    i = len(ratio) - 1
    while i > 0 and ratio[i - 1] < 1:
        i -= 1
    if i == 0:
        return sizes[0]
    # log r is linear in log size between the two points around the crossing r = 1
    l0, l1 = math.log(ratio[i - 1]), math.log(ratio[i])
    frac = l0 / (l0 - l1) if l0 != l1 else 0.0
    return math.exp(math.log(sizes[i - 1]) + frac * (math.log(sizes[i]) - math.log(sizes[i - 1])))


def _gpu() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device())


@task("fundamentals.cpu_vs_gpu_speed", seed="1.10", title="tensor op speed on CPU vs GPU")
class CpuVsGpuSpeed(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            SpeedConfig("add", 1000),
            SpeedConfig("sum", 4097),
            SpeedConfig("matmul", 33),
            SpeedConfig("matmul", 64),
        ],
        "cpu": [SpeedConfig(op, n) for op in ("add", "sum") for n in (10**3, 10**5, 10**7)]
        + [SpeedConfig("matmul", n) for n in (16, 128, 512)],
        "gpu": [SpeedConfig(op, n) for op in ("add", "sum") for n in (10**3, 10**4, 10**5, 10**6, 10**7, 10**8)]
        + [SpeedConfig("matmul", n) for n in (16, 64, 256, 1024, 2048, 4096)],
    }

    def inputs(self, config, device, dtype, seed):
        # on the host whatever the run's device: where the data starts is part of the question
        g = torch.Generator().manual_seed(seed)
        shape = (config.n,) if config.op != "matmul" else (config.n, config.n)
        k = 1 if config.op == "sum" else 2
        return (config.op, *(torch.randn(shape, generator=g, dtype=dtype) for _ in range(k)))

    def reference(self, op, *tensors):
        return OPS[op](*(t.double() for t in tensors))

    def flops(self, config):
        return 2 * config.n**3 if config.op == "matmul" else config.n

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        return el * {"add": 3 * config.n, "sum": config.n, "matmul": 3 * config.n**2}[config.op]

    @impl(baseline=True)
    def cpu(self, op, *tensors):
        fn = OPS[op]
        return lambda: fn(*tensors)

    @impl(requires=("cuda",))
    def cuda(self, op, *tensors):
        fn, dev = OPS[op], _gpu()
        on_gpu = [t.to(dev) for t in tensors]  # outside the timed call

        def run():
            out = fn(*on_gpu)
            torch.cuda.synchronize(dev)  # the result is ready, not just queued
            return out

        return run

    @impl(requires=("cuda",))
    def cuda_with_transfer(self, op, *tensors):
        fn, dev = OPS[op], _gpu()
        return lambda: fn(*(t.to(dev) for t in tensors)).cpu()  # .cpu() waits for the GPU

    def check(self, ctx):
        gpu_ok = ctx.require("cuda", part="GPU results vs float64 and vs the CPU result")
        for config in ctx.configs:
            for trial in range(self.trials):
                inputs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed + trial)
                op, tensors = inputs[0], inputs[1:]
                ref = self.reference(*inputs)
                bound = error_bound(op, tensors, ref, ctx.dtype)
                atol = float(bound.max())
                where = f"[{config.label}, seed {ctx.rng_seed + trial}] (bound {atol:.3g})"
                outs = {}
                for spec in ctx.implementations(self):
                    before = snapshot(inputs)
                    out = getattr(self, spec.method)(*inputs)()
                    guard_not_mutated(inputs, before, name=spec.name)
                    guard_not_constant(out, ref, name=f"{spec.name} {where}")
                    ctx.assert_close(
                        out.double(),
                        ref,
                        rtol=0.0,
                        atol=atol,
                        name=f"{spec.name} vs float64: {op}",
                        where=f"{spec.name} {where}",
                    )
                    outs[spec.name] = out
                if gpu_ok:
                    ctx.assert_close(
                        outs["cuda"].double(),
                        outs["cpu"].double(),
                        rtol=0.0,
                        atol=2 * atol,
                        name=f"cuda vs cpu: {op}",
                        where=where,
                    )

    def bench(self, ctx):
        has_gpu = ctx.require("cuda", part="GPU timing and the CPU/GPU crossover")
        # one wall clock for every variant: the CPU timer (each GPU call synchronises itself)
        wall = Context(
            self,
            mode="bench",
            device="cpu",
            dtype=ctx.dtype,
            size=ctx.size,
            rng_seed=ctx.rng_seed,
            min_run_time_s=ctx.min_run_time_s,
            record=ctx.record,
        )
        variants = ctx.implementations(self, bench=True)
        times: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for config in ctx.configs:
            for spec in variants:
                m = wall.measure(spec.name, self.prepare(ctx, spec.name, config), config=config)
                times.setdefault((config.op, spec.name), []).append((config.n, m.median_ms))
        for (op, variant), pts in times.items():
            pts.sort()
            ctx.curve(
                f"{op}: time per call",
                [n for n, _ in pts],
                [t for _, t in pts],
                series=variant,
                x_label=UNITS[op],
                y_label="ms",
                log_x=True,
                log_y=True,
            )
            if not has_gpu or variant == "cpu":
                continue
            cpu_pts = dict(times[(op, "cpu")])
            sizes = [n for n, _ in pts]
            x = crossover(sizes, [cpu_pts[n] for n in sizes], [t for _, t in pts])
            if x is None:
                ctx.note(f"{op}: {variant} is not faster than the CPU up to {UNITS[op]} = {sizes[-1]}")
            else:
                ctx.metric(f"crossover_{UNITS[op]}_{op}_{variant}", x)
                if x == sizes[0]:
                    ctx.note(f"{op}: {variant} is faster at every size of the sweep (from {sizes[0]})")
