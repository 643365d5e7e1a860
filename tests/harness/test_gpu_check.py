"""gpu-check's plan, budgets, cut-off rule and resume, checked without a GPU."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from harness import gpu_check
from harness.fingerprint import machine_id
from harness.registry import REGISTRY
from harness.results import RunWriter

HEADLINES = ("m4.triton_matmul", "m3.fused_ln_dropout", "m4.cuda_graphs")


def _cli(capsys, *args):
    """The CLI in this process (the subprocess test below covers a fresh interpreter)."""
    from harness.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def _plan(budget=420.0, ids=None):
    ids = gpu_check.select_ids(REGISTRY, None) if ids is None else ids
    return gpu_check.make_plan(ids, budget)


def test_headlines_first_and_every_gpu_task_planned():
    ids = gpu_check.select_ids(REGISTRY, None)
    assert set(HEADLINES) <= set(ids[:4]), ids[:4]
    gpu_tasks = {c.id for c in REGISTRY.all() if c.uses_gpu()} | set(gpu_check.ESTIMATES)
    assert set(ids) == gpu_tasks and len(ids) == len(gpu_tasks)
    assert set(gpu_check.ESTIMATES) <= {c.id for c in REGISTRY.all()}, "an estimate for a task that does not exist"
    recipes = {t for t, e in gpu_check.ESTIMATES.items() if e.size == "cpu"}
    assert recipes and all("cpu" in REGISTRY.get(t).sizes for t in recipes), "a short preset to run on the GPU"


@pytest.mark.parametrize("budget", [420.0, 56.0, 300.3, 5000.0])
def test_budgets_add_up_to_the_budget(budget):
    steps = _plan(budget)
    assert sum(s.budget_s for s in steps) == pytest.approx(budget, abs=1e-6)
    assert all(s.budget_s >= 0 for s in steps)
    tasks = [s for s in steps if s.is_task]
    if budget >= 5000:  # everything fits: no task at 0, each at least its estimate
        assert all(s.budget_s >= s.estimate_s for s in tasks)


def test_plan_fills_in_priority_order_and_rejects_a_budget_below_the_fixed_shares():
    steps = _plan(420.0)
    tasks = [s for s in steps if s.is_task]
    assert [s.id for s in tasks[:3]] == list(HEADLINES) and all(s.budget_s > 0 for s in tasks[:3])
    assert any(s.budget_s == 0 for s in tasks)  # 420 s cannot hold every task's estimate
    with pytest.raises(ValueError, match="start-up"):
        gpu_check.make_plan(["m4.triton_matmul"], gpu_check.STARTUP.seconds + gpu_check.PEAK.seconds)
    unknown = gpu_check.make_plan(["x.unlisted"], 1000.0)[-1]
    assert unknown.estimate_s == gpu_check.DEFAULT_ESTIMATE.seconds


def test_task_order_is_kept_and_globs_add_gpu_tasks_by_priority():
    ids = gpu_check.select_ids(REGISTRY, ["m4.cuda_graphs", "fundamentals.manual_matmul", "m3.*"])
    assert ids[:2] == ["m4.cuda_graphs", "fundamentals.manual_matmul"]  # an exact id runs as named
    assert ids[2] == "m3.fused_ln_dropout"  # the glob's first by priority
    assert set(ids[2:]) == {
        c.id for c in REGISTRY.all() if c.area == "m3" and (c.uses_gpu() or c.id in gpu_check.ESTIMATES)
    }


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _steps(*spec):
    """(id, estimate, budget) -> steps after the two fixed shares."""
    fixed = [gpu_check.Step("(start-up)", 10, 10, ""), gpu_check.Step("(peak)", 10, 10, "")]
    return fixed + [gpu_check.Step(i, e, b, "") for i, e, b in spec]


def test_never_starts_a_task_whose_budget_exceeds_what_is_left():
    clock = FakeClock()
    clock.t = 20.0  # start-up and peak took their 20 s
    took = {"a": 50.0, "b": 10.0, "c": 5.0, "d": 30.0}
    ran: list[tuple[str, float]] = []

    def run(tid, limit):
        ran.append((tid, limit))
        clock.t += min(took[tid], limit)  # a task is cut off at its limit
        return {"id": tid, "status": "pass"}

    # budget 100: a's budget 40 (it will be cut off at 40), b 40, c and d planned at 0
    steps = _steps(("a", 30, 40), ("b", 30, 40), ("c", 5, 0), ("d", 30, 0))
    out = list(gpu_check.execute(steps, 100.0, run, clock=clock, t_start=0.0))
    # a: 80 left, 40 reserved for b: runs under its budget 40 (cut off); b: 40 left, fits exactly,
    # takes 10; c: 30 spare >= its estimate 5, runs under 5 * 1.25; d: 23.75 spare < 30, not started
    assert ran == [("a", 40), ("b", 40), ("c", 6.2)]
    assert [e["status"] for e in out] == ["pass", "pass", "pass", "skip"]
    assert out[-1]["gpu_check_skip"] and "estimate 30 s, 25 s spare" in out[-1]["reason"]
    assert out[0]["gpu_check_budget_s"] == 40

    # a planned task whose budget no longer fits (start-up overran) is skipped, not started
    clock.t, ran[:] = 75.0, []
    out = list(gpu_check.execute(_steps(("b", 30, 40), ("c", 5, 0)), 100.0, run, clock=clock, t_start=0.0))
    assert ran == [("c", 6.2)]
    assert out[0]["status"] == "skip" and "budget of 40 s exceeds the 25 s left" in out[0]["reason"]


def test_time_left_unused_extends_the_next_task_a_little_never_into_reserved_time():
    clock = FakeClock()
    clock.t = 20.0
    ran: list[tuple[str, float]] = []

    def run(tid, limit):
        ran.append((tid, limit))
        clock.t += {"a": 10.0}.get(tid, limit)  # a finishes 30 s early; the others use all they get
        return {"id": tid, "status": "pass"}

    steps = _steps(("a", 40, 40), ("b", 20, 20), ("c", 20, 20))
    list(gpu_check.execute(steps, 100.0, run, clock=clock, t_start=0.0))
    # b: 70 left, 20 reserved for c, so 30 unused: 20 + 25% = 25, not the 50 it could grab;
    # c: 45 left, nothing reserved after it: 20 + 25% = 25
    assert ran == [("a", 40), ("b", 25), ("c", 25)]


def _gpu_check_record(runs_dir, *entries, commit=None):
    from harness.fingerprint import fingerprint

    git = dict(fingerprint()["git"])  # this checkout's commit: a record of other code is not resumed
    if commit:
        git.update(commit=commit, short=commit[:8])
    fp = {"machine_id": machine_id(), "git": git}
    w = RunWriter(mode="run", device="cuda", size="gpu", argv=[], fingerprint=fp, peak={}, runs_dir=runs_dir)
    w.data[gpu_check.RECORD_FIELD] = {"budget_s": 420}
    for e in entries:
        w.add(e)
    w.finish()
    return w


def test_resume_keeps_complete_tasks_of_the_newest_gpu_check_record(tmp_path, capsys):
    fp = {"machine_id": machine_id()}
    old = _gpu_check_record(
        tmp_path,
        {"id": "m4.triton_matmul", "status": "pass"},
        {"id": "m3.fused_ln_dropout", "status": "error", "reason": "timed out after 104 s"},
        {"id": "m4.cuda_graphs", "status": "skip", "reason": "not started", "gpu_check_skip": True},
    )
    assert gpu_check.previous_record(tmp_path, fp["machine_id"])["run_id"] == old.run_id

    r = _cli(capsys, "gpu-check", "--dry-run", "--format", "json", "--budget", "420", "--results-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    ids = [s["id"] for s in json.loads(r.stdout)]
    assert "m4.triton_matmul" not in ids  # done: kept
    assert ids[2:4] == ["m3.fused_ln_dropout", "m4.cuda_graphs"]  # cut off / not started: planned again
    r = _cli(capsys, "gpu-check", "--dry-run", "--fresh", "--format", "json", "--results-dir", str(tmp_path))
    assert "m4.triton_matmul" in [s["id"] for s in json.loads(r.stdout)]
    _gpu_check_record(tmp_path, {"id": "m4.triton_matmul", "status": "pass"}, commit="f" * 40)  # newer, other code
    r = _cli(capsys, "gpu-check", "--dry-run", "--format", "json", "--results-dir", str(tmp_path))
    assert "not resuming" in r.stderr and "ffffffff" in r.stderr
    assert "m4.triton_matmul" in [s["id"] for s in json.loads(r.stdout)]


def test_dry_run_json_and_bad_budget(capsys):
    r = _cli(capsys, "gpu-check", "--dry-run", "--budget", "300", "--format", "json", "--task", "m4.cuda_graphs")
    plan = json.loads(r.stdout)
    assert [s["id"] for s in plan] == ["(start-up)", "(peak)", "m4.cuda_graphs"]
    assert sum(s["budget_s"] for s in plan) == pytest.approx(300)
    r = _cli(capsys, "gpu-check", "--dry-run", "--budget", "10")
    assert r.returncode == 2 and "does not cover" in r.stderr


def test_dry_run_in_a_fresh_interpreter_without_pandas_plotly_or_jsonschema(tmp_path):
    """The lent machine's image lacks plotly and jsonschema: the plan must not import them. A task file
    that fails to import is printed, not silently dropped."""
    (tmp_path / "zz_broken").mkdir()
    (tmp_path / "zz_broken" / "broken.py").write_text("import no_such_module_on_the_gpu_image\n")
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pandas", "plotly", "jsonschema", "docutils"):
                    raise ImportError(f"{name} blocked by the test")
        sys.meta_path.insert(0, Block())
        from harness import fingerprint  # a fixed commit: other sessions commit to this tree meanwhile
        fingerprint.git_state = lambda *a: {"commit": "ab" * 20, "short": "abababab", "dirty": False}
        from harness.cli import main
        sys.exit(main(["gpu-check", "--dry-run", "--budget", "420"]))
        """
    )
    runs = tmp_path / "runs"  # resuming reads the earlier record without jsonschema
    _gpu_check_record(runs, {"id": "m4.triton_matmul", "status": "pass"}, commit="ab" * 20)
    code = code.replace('"420"]', f'"420", "--results-dir", {str(runs)!r}]')
    env = {**os.environ, "DRILLS_TASKS_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "m3.fused_ln_dropout" in r.stdout and "420.0s  in all" in r.stdout
    assert "(resumed): m4.triton_matmul" in r.stdout
    assert "task file failed to import" in r.stderr and "no_such_module_on_the_gpu_image" in r.stderr


def test_inherited_triton_interpret_is_dropped_on_cuda_only(monkeypatch):
    import torch

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert gpu_check.drop_triton_interpret(torch.device("cpu")) is False and os.environ["TRITON_INTERPRET"] == "1"
    assert gpu_check.drop_triton_interpret(torch.device("cuda")) is True and "TRITON_INTERPRET" not in os.environ


def test_list_json_says_uses_gpu(capsys):
    r = _cli(capsys, "list", "--format", "json", "--task", "m4.*")
    rows = {t["id"]: t for t in json.loads(r.stdout)}
    assert rows["m4.triton_matmul"]["uses_gpu"] is True
    assert rows["m4.vectorize_loops"]["uses_gpu"] is False


def test_headlines_come_from_the_record():
    tasks = {
        "m4.triton_matmul": {
            "measurements": [
                {"impl": "torch_matmul", "config": "4096", "dtype": "bfloat16", "median_ms": 0.2},
                {
                    "impl": "triton",
                    "config": "4096",
                    "dtype": "bfloat16",
                    "speedup_vs_baseline": 0.9,
                    "pct_peak_flops": 80,
                },
            ]
        },
        "m3.fused_ln_dropout": {
            "measurements": [{"impl": "triton_fused", "config": "M=8192", "gbps": 2500, "pct_peak_bw": 83.3}]
        },
        "m4.cuda_graphs": {"metrics": {"graph_speedup_b1_mlp": 2.5, "graph_speedup_b2_mlp": 2.0}},
    }
    lines = gpu_check.headlines(tasks)
    assert lines == [
        "Triton/cuBLAS 4096 bfloat16: 0.90x, 80% of the bfloat16 peak",
        "triton_fused LN+dropout M=8192: 2500 GB/s = 83% of copy bandwidth",
        "CUDA graph vs eager at batch 1 (mlp): 2.50x",
    ]
    assert gpu_check.headlines({}) == []


def test_readme_device_commands_parse_and_leave_room():
    """The README's lines for the lent GPU are what a session pastes: they must parse, and each
    budget must end well inside its own timeout, which must end inside the 10-minute call limit."""
    import re
    import shlex
    from pathlib import Path

    from harness.cli import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = [ln for ln in readme.splitlines() if ln.startswith("unset TRITON_INTERPRET;")]
    assert len(lines) == 2, lines  # the first call and the resuming rerun
    for ln in lines:
        cmd = ln.split("python3 -m harness.cli ", 1)[1].split(" 2>&1", 1)[0]
        args = build_parser().parse_args(shlex.split(cmd.replace("$R", "/tmp/x")))
        limit = int(re.search(r"timeout -s INT (\d+) ", ln).group(1))
        assert args.command == "gpu-check" and args.results_dir is not None and not args.dry_run
        assert args.budget + 20 <= limit <= 570, (args.budget, limit)
