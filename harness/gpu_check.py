"""``drills gpu-check``: the first figures of a lent GPU, headline measurements first.

A lent GPU gives a session 15 minutes of device time, start-up included, and one
command may run 10 minutes at most. So gpu-check is a *plan*, not a loop over the
catalogue:

1. **Order.** The headline measurements come first, in :data:`PRIORITY` order: the
   Triton matmul against cuBLAS in bf16 (m4.triton_matmul), fused LayerNorm+Dropout GB/s
   against copy bandwidth (m3.fused_ln_dropout), CUDA-graph latency at batch 1
   (m4.cuda_graphs), then the rest by value per second. ``--task`` order is kept as given.
2. **Budgets.** ``--budget`` seconds are shared out: start-up (:data:`STARTUP`) and the
   peak measurement (:data:`PEAK`) get their stated shares, then each task its estimate
   from :data:`ESTIMATES` (:data:`DEFAULT_ESTIMATE` for an unlisted task) while they fit,
   in plan order; the slack is spread over the planned tasks in proportion to their
   estimates, so the budgets add up to ``--budget`` exactly. A task that does not fit is
   planned with budget 0: it runs only if the tasks before it left enough time.
3. **Never start what cannot finish.** Before each task the time left is compared with
   its budget; a task whose budget exceeds what is left is recorded as skipped, with the
   figures, instead of being started and killed. A started task runs under its budget as
   its time limit (the runner keeps what a cut-off task measured), plus up to
   :data:`EXTRA_SHARE` of it where earlier tasks left time unused.
4. **Resume.** With the same ``--results-dir``, a second invocation keeps the tasks that
   the newest gpu-check record there completed (pass, fail, or skipped for a missing
   capability) if it ran the same commit, copies them into its own record, and plans
   only the rest.
5. **Headlines.** The run ends by printing, and recording under ``gpu_check.headlines``,
   the three headline ratios (:func:`headlines`).

``--dry-run`` prints the plan on any machine, GPU or not, and measures nothing. This
module imports torch only through the registry and the runner, and never pandas,
plotly or jsonschema (absent from the lent machine's image).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: The record field that marks a run record as gpu-check's (plan, budget, resume source).
RECORD_FIELD = "gpu_check"
#: A task may run this share over its budget (over its estimate, for a task that did not fit
#: the plan) on time that earlier tasks left unused; see :func:`execute`.
EXTRA_SHARE = 0.25


@dataclasses.dataclass(frozen=True)
class Estimate:
    """How long a task takes under gpu-check and what it measures."""

    seconds: float
    """estimated wall-clock seconds on an H100/H200: tiny check + gpu-size bench at --min-run-time 0.3,
    compiles and extension builds included (from reading the task's sizes and the compile steps;
    not yet measured on the device)"""
    measures: str
    """what the task measures, one line"""
    size: str = "gpu"
    """the preset gpu-check benches at: "gpu", or "cpu" for a long training recipe (its gpu preset
    takes minutes to hours; gpu-check runs its CUDA path at the short preset, ``drills run --size
    gpu`` runs the recipe)"""


#: Start-up share: the worker imports torch, triton and every task file and makes its CUDA
#: context (~10-15 s), once more after a task is cut off and its worker killed.
STARTUP = Estimate(30.0, "start-up: worker imports (torch, triton, task files), CUDA context, one restart")
#: Peak share: fp32 (TF32 off), bf16 and fp16 matmul at 8192^3 and a 2 GiB copy, best of 3 attempts each.
PEAK = Estimate(25.0, "peaks: fp32/bf16/fp16 matmul GFLOP/s and copy GB/s, best of 3 (reused when stored)")
#: For a task with a GPU part that :data:`ESTIMATES` does not list.
DEFAULT_ESTIMATE = Estimate(60.0, "the task's GPU part (no estimate stated: default)")

#: Task id -> estimate, in priority order (the headline measurements first, then value per second).
ESTIMATES: dict[str, Estimate] = {
    # the check autotunes 12 Hopper configs per shape and dtype (fp32 and bf16): compiles dominate
    "m4.triton_matmul": Estimate(
        120.0, "Triton GEMM vs cuBLAS, bf16 TFLOP/s and % of the bf16 peak at 4096^3 and 512-8192 (autotune included)"
    ),
    # the first build of the CUDA extension (bindings.cpp dominates) is paid here
    "m3.fused_ln_dropout": Estimate(
        100.0,
        "fused LayerNorm+Dropout GB/s (Triton, CUDA ext) vs eager, % of copy bandwidth, bf16 (ext build included)",
    ),
    "m4.cuda_graphs": Estimate(40.0, "CUDA-graph replay vs eager latency, batch 1..64, MLP and Transformer block"),
    "m3.reduction_kernel": Estimate(45.0, "sum GB/s of the CUDA ext and Triton vs torch.sum, up to 2^28 elements"),
    "m2.manual_amp": Estimate(35.0, "fp16/bf16 autocast step time and loss scaling on an attention block"),
    "m3.streams": Estimate(30.0, "copy/compute overlap with 2 and 4 CUDA streams vs one"),
    # repeats the kernels above in one table: worth its time once they are measured
    "m3.native_comparison": Estimate(60.0, "one table: each Triton/CUDA kernel vs its native op, rate and % of peak"),
    "m4.profile_resnet18": Estimate(50.0, "torch.profiler of ResNet-18 training steps: top CUDA kernels, trace"),
    "m3.pinned_loader": Estimate(40.0, "H2D GB/s pinned vs pageable, loader copy/compute overlap"),
    "m4.allocator_fragmentation": Estimate(45.0, "caching allocator: reserved vs allocated over 32 batch sizes"),
    "fundamentals.cpu_vs_gpu_speed": Estimate(35.0, "add and sum, 10^3..10^8 elements, CPU vs GPU with transfers"),
    # --- added with issues 13-17: not yet measured on a device (estimates from the presets) ---
    "advanced.amp": Estimate(40.0, "CUDA float16 op lists and GradScaler; fp32 vs autocast step time, 4 x 4096 MLP"),
    "m5.activation_checkpointing": Estimate(60.0, "max_memory_allocated and step time per policy, GPT of 4..25 blocks"),
    "deployment.gpu_monitor": Estimate(30.0, "NVML utilisation/memory series while a 4096-wide MLP trains"),
    "advanced.pruning": Estimate(45.0, "2:4 semi-structured vs dense vs CSR matmul latency on CUDA"),
    "m6.loader_utilization": Estimate(45.0, "NVML GPU utilisation while a DataLoader feeds 64 matmuls per batch"),
    # max-autotune compiles for minutes on first use: the longest of this group
    "deployment.tensorrt": Estimate(120.0, "torch_tensorrt engine, or torch.compile max-autotune vs eager without it"),
    # multi-rank tasks: NCCL needs 2 GPUs; on one GPU their checks run on gloo CPU ranks
    "m5.ddp_resnet50": Estimate(90.0, "ResNet-50 images/s at world size 1 (224 px, bf16 AMP); more with more GPUs"),
    "m5.zero_sharding": Estimate(60.0, "ZeRO-1/FSDP2 state bytes per rank and step time (NCCL with 2 GPUs)"),
    "m5.pipeline_parallel": Estimate(60.0, "GPipe/1F1B throughput vs micro-batches (NCCL with 2 GPUs)"),
    "m5.bucket_tuning": Estimate(30.0, "DDP step time vs bucket_cap_mb (NCCL with 2 GPUs; else skipped)"),
    # training recipes: their CUDA path at the cpu preset (short); the gpu preset is drills run --size gpu
    "research.gpt2_repro": Estimate(60.0, "GPT training tokens/s and MFU on CUDA (cpu preset), compile path", "cpu"),
    "research.diffusion": Estimate(
        30.0, "DDPM training images/s; 1000-step vs strided sampling time (cpu preset)", "cpu"
    ),
    "gans.stylegan_like": Estimate(25.0, "grouped vs per-sample modulated conv, images/s on CUDA (cpu preset)", "cpu"),
    "gans.wgan_gp": Estimate(25.0, "critic step with vs without the gradient penalty on CUDA (cpu preset)", "cpu"),
    "gans.dcgan": Estimate(25.0, "DCGAN D+G steps/s on CUDA and the digits-feature FD (cpu preset)", "cpu"),
    "research.resnet_repro": Estimate(30.0, "ResNet-20 CIFAR recipe images/s on CUDA (cpu preset)", "cpu"),
    "research.vit_cifar100": Estimate(30.0, "ViT recipe images/s on CUDA (cpu preset)", "cpu"),
    "research.bert_mlm": Estimate(30.0, "BERT MLM tokens/s at T=128 on CUDA (cpu preset)", "cpu"),
    "research.ppo": Estimate(40.0, "PPO env steps/s with the policy on CUDA (cpu preset: solves CartPole)", "cpu"),
}
PRIORITY: tuple[str, ...] = tuple(ESTIMATES)


@dataclasses.dataclass
class Step:
    """One line of the plan."""

    id: str
    """task id, or ``(start-up)`` / ``(peak)`` for the shares that are not tasks"""
    estimate_s: float
    """stated estimate, seconds"""
    budget_s: float
    """seconds given to it; 0: does not fit, runs only if earlier steps leave the time"""
    measures: str
    """what it measures"""

    @property
    def is_task(self) -> bool:
        return not self.id.startswith("(")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "budget_s": self.budget_s, "estimate_s": self.estimate_s, "measures": self.measures}


def estimate_for(task_id: str) -> Estimate:
    return ESTIMATES.get(task_id, DEFAULT_ESTIMATE)


def priority_order(ids: Iterable[str]) -> list[str]:
    """Ids in :data:`PRIORITY` order; unlisted ones after, in the order given."""
    ids = list(dict.fromkeys(ids))
    rank = {t: i for i, t in enumerate(PRIORITY)}
    return sorted(ids, key=lambda t: (rank.get(t, len(rank)), ids.index(t)))


def make_plan(task_ids: list[str], budget_s: float) -> list[Step]:
    """Share ``budget_s`` out over start-up, peaks and ``task_ids`` (already in run order).

    Returns the steps, start-up and peak first; budgets are in tenths of a second and add up
    to ``budget_s`` (rounded to a tenth).

    Raises:
        ValueError: ``budget_s`` does not cover the start-up and peak shares.
    """
    fixed = STARTUP.seconds + PEAK.seconds
    if budget_s <= fixed:
        raise ValueError(
            f"--budget {budget_s:g} s does not cover start-up ({STARTUP.seconds:g} s) and the peak measurement "
            f"({PEAK.seconds:g} s); give more than {fixed:g} s"
        )
    total = round(budget_s * 10)  # tenths
    steps = [
        Step("(start-up)", STARTUP.seconds, STARTUP.seconds, STARTUP.measures),
        Step("(peak)", PEAK.seconds, PEAK.seconds, PEAK.measures),
    ]
    left = total - round(fixed * 10)
    fits: list[Step] = []
    for tid in task_ids:
        est = estimate_for(tid)
        s = Step(tid, est.seconds, 0.0, est.measures)
        steps.append(s)
        if round(est.seconds * 10) <= left:
            left -= round(est.seconds * 10)
            fits.append(s)
    # spread the slack over what fits, in proportion to the estimates; the rounding rest goes to the first
    planned = sum(round(s.estimate_s * 10) for s in fits)
    given = 0
    for s in fits:
        share = round(s.estimate_s * 10) + (left * round(s.estimate_s * 10)) // planned if planned else 0
        s.budget_s = share / 10
        given += share
    if fits:
        fits[0].budget_s = (round(fits[0].budget_s * 10) + left - (given - planned)) / 10
    elif left:  # nothing fits: the slack stays with start-up, so the sum still equals the budget
        steps[0].budget_s = (round(steps[0].budget_s * 10) + left) / 10
    return steps


def select_ids(registry, patterns: list[str] | None) -> list[str]:
    """The tasks gpu-check runs, in run order.

    Without ``patterns``: every task with a GPU part (``uses_gpu()``) or an entry in
    :data:`ESTIMATES` (the training recipes, run at their short preset), in priority order.
    With them: in the order given; an exact id is taken as named, a glob adds its tasks with a
    GPU part in priority order.

    Raises:
        harness.registry.RegistryError: a pattern that matches nothing.
    """
    if not patterns:
        return priority_order(c.id for c in registry.all() if c.uses_gpu() or c.id in ESTIMATES)
    out: list[str] = []
    for pat in patterns:
        hits = registry.select(tasks=[pat])
        if any(ch in pat for ch in "*?["):
            ids = priority_order(c.id for c in hits if c.uses_gpu() or c.id in ESTIMATES)
        else:
            ids = [c.id for c in hits]
        out += [t for t in ids if t not in out]
    return out


# -- resume -----------------------------------------------------------------------------------


def is_complete(entry: dict[str, Any]) -> bool:
    """A task a resumed gpu-check need not run again: pass, fail, or skipped for a missing capability."""
    st = entry.get("status")
    if st in ("pass", "fail"):
        return True
    return st == "skip" and not entry.get("gpu_check_skip")


def previous_record(runs_dir: Path, machine: str) -> dict[str, Any] | None:
    """The gpu-check record for ``machine`` under ``runs_dir`` written last, or None.

    Read as plain JSON, not through ``harness.results.load_run``: its schema check needs
    jsonschema, which the lent machine's image lacks. A file that is not a gpu-check record
    with a ``tasks`` object is passed over.
    """
    from harness.results import find_runs

    def written(path: Path) -> tuple[int, str]:  # run ids sort by the second only: the last write decides
        try:
            return path.stat().st_mtime_ns, path.name
        except OSError:
            return 0, path.name

    for path in sorted(find_runs(runs_dir, machine), key=written, reverse=True):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get(RECORD_FIELD), dict) and isinstance(data.get("tasks"), dict):
            return data
    return None


# -- the run ----------------------------------------------------------------------------------


def execute(
    steps: list[Step],
    budget_s: float,
    run_task: Callable[[str, float], dict[str, Any]],
    *,
    clock: Callable[[], float] = time.monotonic,
    t_start: float | None = None,
) -> Iterable[dict[str, Any]]:
    """Run the task steps in order, each under its budget; yield each record entry.

    ``run_task(id, limit_s)`` runs one task with ``limit_s`` as its time limit. Time is
    counted from ``t_start`` (default: now). A task with a budget runs only if its budget
    fits in what is left; its limit is its budget plus, where earlier tasks left time unused,
    up to :data:`EXTRA_SHARE` of its budget more (never time reserved for the planned tasks
    after it): a headline task that runs long is not cut off while time lies idle. A task
    planned at 0 runs only if its estimate fits in what is left beyond the budgets of the
    planned tasks still to come, with a limit of :data:`EXTRA_SHARE` over its estimate as far
    as that spare time allows. Others are yielded as ``skip`` entries with
    ``gpu_check_skip: true`` and the figures in the reason.
    """
    t0 = clock() if t_start is None else t_start
    tasks = [s for s in steps if s.is_task]
    for i, s in enumerate(tasks):
        left = budget_s - (clock() - t0)
        reserved = sum(x.budget_s for x in tasks[i + 1 :])
        spare = left - reserved
        if s.budget_s > 0:
            fits = s.budget_s <= left
            limit = s.budget_s + min(max(spare - s.budget_s, 0.0), EXTRA_SHARE * s.budget_s)
            why = f"not started: its budget of {s.budget_s:.0f} s exceeds the {max(left, 0):.0f} s left"
        else:
            fits = s.estimate_s <= spare
            limit = min(spare, (1 + EXTRA_SHARE) * s.estimate_s)
            why = (
                f"not started: over the gpu-check budget of {budget_s:.0f} s "
                f"(estimate {s.estimate_s:.0f} s, {max(spare, 0):.0f} s spare)"
            )
        if not fits:
            yield {"id": s.id, "status": "skip", "reason": why, "gpu_check_skip": True}
            continue
        limit = round(limit, 1)
        entry = run_task(s.id, limit)
        entry["gpu_check_budget_s"] = limit
        yield entry


def headlines(tasks: dict[str, dict[str, Any]]) -> list[str]:
    """The three headline ratios, as lines, from a record's task entries (what is there of them).

    * Triton matmul / cuBLAS throughput at each size (``speedup_vs_baseline`` of ``triton``:
      cuBLAS time / Triton time) with the bf16 % of peak;
    * fused LayerNorm+Dropout GB/s as % of the measured copy bandwidth, per fused kernel and size;
    * CUDA-graph replay vs eager latency at batch 1 (``graph_speedup_b1_<model>``).
    """
    out = []
    rows = (tasks.get("m4.triton_matmul") or {}).get("measurements", [])
    for m in rows:
        if m.get("impl") == "triton" and m.get("speedup_vs_baseline"):
            pct = f", {m['pct_peak_flops']:.0f}% of the {m.get('dtype')} peak" if m.get("pct_peak_flops") else ""
            out.append(f"Triton/cuBLAS {m['config']} {m.get('dtype')}: {m['speedup_vs_baseline']:.2f}x{pct}")
    for m in (tasks.get("m3.fused_ln_dropout") or {}).get("measurements", []):
        if m.get("impl") in ("triton_fused", "cuda_fused") and m.get("gbps"):
            pct = f" = {m['pct_peak_bw']:.0f}% of copy bandwidth" if m.get("pct_peak_bw") else ""
            vs = f", {m['speedup_vs_baseline']:.2f}x eager" if m.get("speedup_vs_baseline") else ""
            out.append(f"{m['impl']} LN+dropout {m['config']}: {m['gbps']:.0f} GB/s{pct}{vs}")
    for k, v in sorted((tasks.get("m4.cuda_graphs") or {}).get("metrics", {}).items()):
        if k.startswith("graph_speedup_b1_") and v:
            out.append(f"CUDA graph vs eager at batch 1 ({k.rsplit('_', 1)[1]}): {v:.2f}x")
    return out


def drop_triton_interpret(device) -> bool:
    """On a CUDA run, remove an inherited ``TRITON_INTERPRET`` from this process's environment,
    so the spawned worker (which inherits it) compiles Triton kernels instead of interpreting
    them on the host. True if it was set and removed."""
    return device.type == "cuda" and os.environ.pop("TRITON_INTERPRET", None) is not None


def format_plan(steps: list[Step], budget_s: float) -> str:
    """The plan as a text table: order, budget, estimate, what each step measures."""
    lines = [
        f"gpu-check plan for a budget of {budget_s:g} s",
        f"{'#':>2}  {'budget':>7}  {'est.':>5}  {'id':<30} measures",
    ]
    n = 0
    for s in steps:
        num = ""
        if s.is_task:
            n += 1
            num = str(n)
        budget = f"{s.budget_s:.1f}s" if s.budget_s else "0 *"
        lines.append(f"{num:>2}  {budget:>7}  {s.estimate_s:>4.0f}s  {s.id:<30} {s.measures}")
    lines.append(f"{'':>2}  {sum(s.budget_s for s in steps):>6.1f}s  in all")
    if any(s.budget_s == 0 for s in steps):
        lines.append("* does not fit: runs only if the steps before it leave its estimate to spare")
    return "\n".join(lines)


def cmd(args, *, console, err_console, usage_error: type[Exception], marks: dict[str, str]) -> int:
    """``drills gpu-check``: see the module docstring. Returns the exit status (0, 1, 130)."""
    t_start = time.monotonic()  # the budget counts the registry's imports too
    from harness.registry import REGISTRY, RegistryError

    try:
        ids = select_ids(REGISTRY, args.task)
    except RegistryError as e:
        raise usage_error(str(e)) from None
    for path, tb in REGISTRY.load_errors.items():
        err_console.print(f"task file failed to import: {path}\n{tb.strip().splitlines()[-1]}", markup=False)

    prev = None
    if args.results_dir is not None and not getattr(args, "fresh", False):
        from harness.fingerprint import fingerprint

        fp = fingerprint()
        prev = previous_record(args.results_dir, fp["machine_id"])
        theirs, ours = ((prev or {}).get("fingerprint", {}).get("git") or {}).get("commit"), fp["git"].get("commit")
        if prev is not None and theirs != ours:  # figures of other code are not this run's
            err_console.print(f"not resuming from {prev['run_id']}: it ran commit {theirs}, this is {ours}")
            prev = None
    kept = {t: e for t, e in (prev or {}).get("tasks", {}).items() if t in ids and is_complete(e)}
    todo = [t for t in ids if t not in kept]
    try:
        steps = make_plan(todo, args.budget)
    except ValueError as e:
        raise usage_error(str(e)) from None

    if args.dry_run:
        if args.format == "json":
            print(json.dumps([s.to_json() for s in steps], indent=1))
        else:
            print(format_plan(steps, args.budget))  # plain print: rich would wrap the table at 80 columns
            if kept:
                print(f"kept from {prev['run_id'] if prev else '?'} (resumed): {', '.join(kept)}")
        return 0
    return _run(args, steps, kept, prev, t_start, console=console, usage_error=usage_error, marks=marks)


def _run(args, steps, kept, prev, t_start: float, *, console, usage_error, marks) -> int:
    from harness import capabilities
    from harness import fingerprint as fpmod
    from harness.peak import load_or_measure
    from harness.registry import REGISTRY
    from harness.results import RunWriter
    from harness.runner import Runner, resolve_device

    try:
        device = resolve_device("cuda")
    except ValueError:
        raise usage_error(
            "gpu-check needs a CUDA GPU (torch sees none here); `drills gpu-check --dry-run` shows the plan anywhere"
        ) from None
    if drop_triton_interpret(device):
        console.print(
            "TRITON_INTERPRET was set: unset for this CUDA run (the worker compiles Triton kernels)", soft_wrap=True
        )
    print(format_plan(steps, args.budget), flush=True)
    try:
        peak = load_or_measure(device, peaks_dir=args.results_dir)
    except Exception as e:  # a fault of the peak must not cost the tasks: they run, without % of peak
        console.print(
            f"peak measurement failed ({type(e).__name__}: {e}); tasks run without % of peak",
            soft_wrap=True,
            markup=False,
        )
        peak = {"error": f"{type(e).__name__}: {e}"[:300]}
    console.print(
        f"peak: {json.dumps({k: v for k, v in peak.items() if k.endswith(('gflops', 'gbps'))})}", soft_wrap=True
    )
    writer = RunWriter(
        mode="run",
        device=str(device),
        size="gpu",
        argv=sys.argv[1:],
        fingerprint=fpmod.fingerprint(),
        peak=peak,
        runs_dir=args.results_dir,
        capabilities=capabilities.detect(),
    )
    writer.data[RECORD_FIELD] = {
        "budget_s": args.budget,
        "plan": [s.to_json() for s in steps],
        "resumed_from": prev["run_id"] if (prev and kept) else None,
    }
    writer.data["load_errors"] = {p: tb.strip().splitlines()[-1] for p, tb in REGISTRY.load_errors.items()}
    for tid, done in kept.items():
        writer.add({**done, "resumed_from": prev["run_id"]})
        console.print(f"{'kept':>11} {tid:<42} from {prev['run_id']}", soft_wrap=True)
    runner = Runner(mode="run", device=device, size="gpu", peak=peak, min_run_time_s=args.min_run_time)

    def run_one(tid: str, limit: float) -> dict[str, Any]:
        runner.time_limit_s = limit
        runner.kwargs["size"] = estimate_for(tid).size  # a training recipe runs its short preset
        return runner.run_one(REGISTRY.get(tid))

    bad = 0
    status = "complete"
    try:
        for entry in execute(steps, args.budget, run_one, t_start=t_start):
            cls = REGISTRY.get(entry["id"])
            for k in ("area", "seed", "title", "kind"):
                entry.setdefault(k, getattr(cls, k))
            writer.add(entry)
            bad += entry["status"] in ("fail", "error")
            from harness.cli import _status_line  # text, never markup: reasons carry [brackets]

            status_line = _status_line(
                entry["status"], entry["id"], entry.get("duration_s", 0), entry.get("reason", "")[:160]
            )
            console.print(status_line, soft_wrap=True)  # one line per task: the device log is read afterwards
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        runner.close()
        heads = writer.data[RECORD_FIELD]["headlines"] = headlines(writer.data["tasks"])
        writer.finish(status)
    for line in heads:
        console.print(f"headline: {line}", soft_wrap=True, markup=False)
    console.print(
        f"gpu-check: {len(steps) - 2} tasks, {bad} failed or errored, {time.monotonic() - t_start:.0f} s; "
        f"record: {writer.path}",
        soft_wrap=True,
    )
    if status == "interrupted":
        return 130
    return 1 if bad else 0


# -- helpers for the tasks' GPU parts ------------------------------------------------------------


def worst_elements(actual, expected, *, rtol: float, atol: float, k: int = 1024, min_numel: int = 1 << 22):
    """(actual, expected) cut down, on their device, to the elements that decide a comparison.

    ``harness.checks.compare`` works on host copies in float64: for a 2^28-element GPU output
    that is ~2 GB copied and ~30 s of host work per comparison, all of it device time on a
    lent machine. Here the error is computed on the device and only these go to the host: the
    ``k`` elements furthest over ``atol + rtol * |expected|`` (the worst one first), the
    element of largest absolute error, and ``k`` evenly spaced ones. ``ctx.assert_close`` on
    the result passes exactly when every element is within tolerance (the worst is included)
    and records the true max absolute error. NaN or inf errors count as the worst.

    Tensors under ``min_numel`` elements (or of different shapes, for compare to report) are
    returned as they are. Shapes: any equal shapes in; 1-D (<= 2k + 1,) on the CPU out, in the
    original dtypes.
    """
    import torch

    if actual.numel() < min_numel or actual.shape != expected.shape:
        return actual, expected
    a, e = actual.detach().reshape(-1), expected.detach().reshape(-1)  # (n,)
    diff = (a.float() - e.float()).abs()
    over = torch.nan_to_num(diff - (atol + rtol * e.float().abs()), nan=float("inf"))
    idx = torch.cat(
        [
            torch.topk(over, min(k, over.numel())).indices,
            torch.nan_to_num(diff, nan=float("inf")).argmax().reshape(1),
            # integer spacing: a float32 linspace rounds n - 1 up to n past 2^24 elements
            torch.arange(min(k, a.numel()), device=a.device) * (a.numel() - 1) // max(min(k, a.numel()) - 1, 1),
        ]
    )
    return a[idx].cpu(), e[idx].cpu()
