"""1.10 Tensor op speed on CPU vs GPU: where does the GPU start to pay off?

Three ops, each a different kind of work: ``add`` (a + b, memory-bound, n elements),
``sum`` (a full reduction of n elements) and ``matmul`` (n x n @ n x n, compute-bound).

Compared, on the same float32 data (created on the host, as loaded data is):

* ``cpu`` (baseline): the op on CPU tensors.
* ``cuda``: the op on tensors already on the GPU, then ``torch.cuda.synchronize()``:
  the time until the result is ready, launch overhead included.
* ``cuda_with_transfer``: copy the inputs to the GPU, run the op, copy the result back:
  the cost when the data lives on the host and the answer is needed there.

All three are timed with the same wall clock (the harness's CPU timer): the question is
what the caller waits for, and CUDA events would hide the launch and synchronisation cost
that decides the small sizes. The bench records ``crossover_<unit>_<op>_<variant>``, the
size from which the GPU variant stays faster than the CPU (:func:`harness.crossover.crossover`).
Check: CPU and GPU results equal a float64 reference within a rounding-error bound
(:func:`harness.rounding.error_bound`, after Higham 2002 and Higham & Mary 2019) and agree
within twice that bound; a GPU matmul in TF32 exceeds it, and the check says so.

Lesson: a GPU pays off only once the work per call outgrows the fixed cost of
launching and synchronising and, for host data, of the transfer, which an add can hardly
repay: it moves as many bytes over PCIe (31.5 GB/s each way for PCIe 4.0 x16, PCI-SIG) as
the op reads from GPU memory (3.35 TB/s on an H100 SXM, NVIDIA's H100 datasheet). So the
crossover sits at small sizes for matmul (O(n^3) work on O(n^2) data) and much later for
add and sum. The claims are GPU claims: on a CPU-only machine they read "not measured".
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Operator, impl, task
from harness.checks import guard_not_constant, guard_not_mutated, snapshot
from harness.claims import speedup
from harness.context import Context
from harness.crossover import crossover
from harness.mutants import replace_impl
from harness.rounding import error_bound

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


# -- wrong versions, declared as mutants below ------------------------------------------
def _transposed(self, op, *ts):
    return lambda: ts[0] @ ts[1].T if op == "matmul" else OPS[op](*ts)


def _bf16(self, op, *ts):  # bfloat16 arithmetic, as an accidental autocast would do
    return lambda: OPS[op](*(t.bfloat16() for t in ts)).float()


def _tail_dropped(self, op, *ts):  # a reduction that forgets the last partial block of 64
    if op != "sum":
        return lambda: OPS[op](*ts)
    n = ts[0].numel() // 64 * 64
    return lambda: ts[0][:n].sum()


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
    claims = (
        speedup(
            "cuda",
            over="cpu",
            at_least=10,
            config="matmul n=4096",
            device="cuda",
            text="matmul 4096^2 on the GPU (data already there) >= 10x the CPU",
        ),
        speedup(
            "cuda",
            over="cuda_with_transfer",
            at_least=5,
            config="add n=100000000",
            device="cuda",
            text="an add of 1e8 elements: the host-GPU round trip costs >= 5x the GPU op itself",
        ),
    )
    metrics = {
        f"crossover_{UNITS[op]}_{op}_{v}": f"{UNITS[op]} from which {v} stays faster than the CPU"
        for op in OPS
        for v in ("cuda", "cuda_with_transfer")
    }
    mutants = (
        replace_impl("transposed_matmul", "multiplies by B^T", "cpu", _transposed, match="matmul"),
        replace_impl("bf16_arithmetic", "computes in bfloat16 (an accidental autocast)", "cpu", _bf16),
        replace_impl(
            "sum_drops_tail", "the sum forgets the last partial block of 64", "cpu", _tail_dropped, match="sum"
        ),
    )

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
