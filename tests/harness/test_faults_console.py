"""Issue 10: console text is text (never rich markup), task output is captured, a bad row or an
error in one task does not hurt the others, and the worker restarts after any error.

One `drills check` subprocess runs four planted tasks, in this order (their seeds):

* ``table_nan`` puts NaN, inf and tensors into a table and a ``[/]`` note (passes);
* ``markup_fail`` fails a check whose message has ``[/]`` and ``[red]``;
* ``kbint`` raises KeyboardInterrupt inside the task;
* ``markup_err`` raises an error whose message has ``[/]`` and torch's ``[enforce fail ...]``,
  after printing 100 lines to stdout and stderr.

Each writes its worker's pid to $DRILLS_TEST_DIR/<name>.pid.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from harness.results import find_runs, load_run

HEAD = """
    import os, sys, torch
    from pathlib import Path
    from harness import Comparison, task

    def pid(name):
        (Path(os.environ["DRILLS_TEST_DIR"]) / f"{name}.pid").write_text(str(os.getpid()))
"""
TASKS = {
    "markup_err": """
    @task("zz_console.markup_err", seed="1.04", title="error text in brackets")
    class MarkupErr(Comparison):
        \"\"\"Prints a lot, then raises with brackets in the message.\"\"\"
        sizes = {"tiny": None}
        variants = ("a",)
        def check(self, ctx):
            pid("markup_err")
            for i in range(100):
                print(f"out line {i} [bold]x[/]")
                print(f"err line {i}", file=sys.stderr)
            os.system("echo from a child process")
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] bad [/] end")
    """,
    "table_nan": """
    @task("zz_console.table_nan", seed="1.01", title="NaN in a table")
    class TableNan(Comparison):
        \"\"\"A table row with NaN, inf and tensors; a note with [/].\"\"\"
        sizes = {"tiny": None}
        variants = ("a",)
        def check(self, ctx):
            pid("table_nan")
            ctx.table("losses", [{"step": 1, "loss": float("nan"), "t": torch.tensor(0.5)},
                                 {"step": 2, "loss": float("inf"), "t": torch.ones(2)}])
            ctx.metric("final_loss", float("nan"))
            ctx.note("a note [/] with [red]brackets[/red]")
    """,
    "kbint": """
    @task("zz_console.kbint", seed="1.03", title="raises KeyboardInterrupt")
    class KbInt(Comparison):
        \"\"\"Raises KeyboardInterrupt from inside the task.\"\"\"
        sizes = {"tiny": None}
        variants = ("a",)
        def check(self, ctx):
            pid("kbint")
            ctx.expect(True, "before the interrupt", name="before")
            raise KeyboardInterrupt
    """,
    "markup_fail": """
    @task("zz_console.markup_fail", seed="1.02", title="check message in brackets")
    class MarkupFail(Comparison):
        \"\"\"A failing check whose message has markup-like brackets.\"\"\"
        sizes = {"tiny": None}
        variants = ("a",)
        def check(self, ctx):
            pid("markup_fail")
            ctx.expect(False, "value [/] was [red]wrong[/red]", name="bracket check")
    """,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    area = tmp / "tasks" / "zz_console"
    area.mkdir(parents=True)
    for name, src in TASKS.items():
        (area / f"{name}.py").write_text(textwrap.dedent(HEAD) + textwrap.dedent(src))
    env = {
        **os.environ,
        "DRILLS_TASKS_DIR": str(tmp / "tasks"),
        "DRILLS_RESULTS_DIR": str(tmp / "runs"),
        "DRILLS_TEST_DIR": str(tmp),
        "COLUMNS": "300",
    }
    ids = [f"zz_console.{n}" for n in TASKS]
    args = [sys.executable, "-m", "harness.cli", "check", "--save", *[x for i in ids for x in ("--task", i)]]
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    (runs,) = find_runs(tmp / "runs")
    pids = {n: int((tmp / f"{n}.pid").read_text()) for n in TASKS}
    return r, load_run(runs)["tasks"], pids


def test_brackets_are_printed_as_text_and_the_summary_survives(run):
    r, tasks, _ = run
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MarkupError" not in r.stdout + r.stderr and "Traceback (most recent" not in r.stderr
    assert "[enforce fail at alloc_cpu.cpp:127] bad [/] end" in r.stdout
    assert "value [/] was [red]wrong[/red]" in r.stdout
    assert "check: 1 pass, 1 fail, 2 error" in r.stdout
    # the status column is aligned: every status line has its task id at the same column
    cols = {
        line.index("zz_console.")
        for line in r.stdout.splitlines()
        if line.rstrip().endswith("s")
        and "zz_console." in line
        and line.lstrip().split()[0] in ("pass", "FAIL", "ERROR")
    }
    assert len(cols) == 1, r.stdout


def test_task_output_is_captured_not_printed(run):
    r, tasks, _ = run
    t = tasks["zz_console.markup_err"]
    assert "out line 50" not in r.stdout + r.stderr  # not on the terminal
    out, err = t["stdout"].splitlines(), t["stderr"].splitlines()
    assert "out line 99 [bold]x[/]" in out and "out line 79 [bold]x[/]" not in out and len(out) <= 21
    assert "from a child process" in t["stdout"]  # a child's output is caught too (fd 1, not sys.stdout)
    assert err[-1] == "err line 99" and len(t["stderr"]) <= 4100


def test_nan_and_tensors_in_a_table_do_not_kill_the_run(run):
    _, tasks, _ = run
    t = tasks["zz_console.table_nan"]
    assert t["status"] == "pass"
    rows = t["tables"][0]["rows"]
    assert rows == [{"step": 1, "loss": None, "t": 0.5}, {"step": 2, "loss": None, "t": [1.0, 1.0]}]
    assert t["metrics"] == {"final_loss": None}
    assert any("metrics.final_loss" in w for w in t["warnings"]) and any("rows[0].loss" in w for w in t["warnings"])
    assert t["notes"] == ["a note [/] with [red]brackets[/red]"]


def test_keyboard_interrupt_inside_a_task_is_reported_as_such(run):
    _, tasks, _ = run
    t = tasks["zz_console.kbint"]
    assert t["status"] == "error" and "KeyboardInterrupt raised inside the task" in t["reason"]
    assert "died" not in t["reason"] and [c["name"] for c in t["checks"]] == ["before"]
    assert tasks["zz_console.markup_err"]["status"] == "error"  # the run went on


def test_the_worker_restarts_after_any_error_only(run):
    _, _, pids = run
    # a pass and a failed check keep the worker; an error (not only a timeout or a crash) replaces it
    assert pids["table_nan"] == pids["markup_fail"] == pids["kbint"]
    assert pids["kbint"] != pids["markup_err"]
