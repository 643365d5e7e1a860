"""Planted task files for runner/CLI tests, loaded through DRILLS_TASKS_DIR in subprocesses."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLANTED = {
    "ok.py": '''
        import dataclasses, torch
        from harness import Operator, impl, task

        @dataclasses.dataclass(frozen=True)
        class C:
            n: int

        @task("zz_planted.ok", seed="1.01", title="a passing operator")
        class Ok(Operator):
            """Doubles a vector; passes."""
            sizes = {"tiny": C(8), "cpu": [C(8), C(64)]}
            def inputs(self, c, device, dtype, seed):
                return (torch.randn(c.n, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device),)
            def reference(self, x):
                return 2 * x
            def bytes(self, c, dtype):
                return 2 * 4 * c.n
            @impl(baseline=True)
            def mul(self, x):
                return lambda: x * 2
            @impl
            def add(self, x):
                return lambda: x + x
    ''',
    "wrong.py": '''
        import dataclasses, torch
        from harness import Operator, impl, task

        @dataclasses.dataclass(frozen=True)
        class C:
            n: int

        @task("zz_planted.wrong", seed="1.02", title="a wrong implementation")
        class Wrong(Operator):
            """One implementation is off by 1%; the check must fail."""
            sizes = {"tiny": C(8)}
            def inputs(self, c, device, dtype, seed):
                return (torch.randn(c.n, generator=torch.Generator().manual_seed(seed)),)
            def reference(self, x):
                return 2 * x
            @impl(baseline=True)
            def right(self, x):
                return lambda: 2 * x
            @impl
            def off(self, x):
                return lambda: 2.02 * x
    ''',
    "raises.py": '''
        from harness import Comparison, task

        @task("zz_planted.raises", seed="1.03", title="raises")
        class Raises(Comparison):
            """Raises a RuntimeError in its check."""
            sizes = {"tiny": None}
            variants = ("a",)
            def check(self, ctx):
                raise RuntimeError("boom from a planted task")
    ''',
    "hangs.py": '''
        import time
        from harness import Comparison, task

        @task("zz_planted.hangs", seed="1.04", title="hangs")
        class Hangs(Comparison):
            """Sleeps far past any time limit."""
            sizes = {"tiny": None}
            variants = ("a",)
            time_limit_s = {"check": 3.0}
            def check(self, ctx):
                time.sleep(600)
    ''',
    "crashes.py": '''
        import os, signal
        from harness import Comparison, task

        @task("zz_planted.crashes", seed="1.05", title="crashes")
        class Crashes(Comparison):
            """Kills its own process, like a segfault or the OOM killer would."""
            sizes = {"tiny": None}
            variants = ("a",)
            def check(self, ctx):
                os.kill(os.getpid(), signal.SIGKILL)
    ''',
    "needs_gpu.py": '''
        from harness import Comparison, task

        @task("zz_planted.needs_gpu", seed="1.06", title="needs a GPU")
        class NeedsGpu(Comparison):
            """Requires cuda."""
            requires = ("cuda",)
            sizes = {"tiny": None}
            variants = ("a",)
            def check(self, ctx):
                pass
    ''',
}


@pytest.fixture(scope="session")
def planted_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted_tasks")
    area = root / "zz_planted"
    area.mkdir()
    for name, src in PLANTED.items():
        (area / name).write_text(textwrap.dedent(src))
    return root


@pytest.fixture
def drills(planted_dir, tmp_path):
    """Run the drills CLI in a subprocess with the planted tasks and a private results dir."""
    env = {
        **os.environ,
        "DRILLS_TASKS_DIR": str(planted_dir),
        "DRILLS_RESULTS_DIR": str(tmp_path / "runs"),
        "PYTHONUNBUFFERED": "1",
    }

    def run(*args, timeout=120, **kw):
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True, timeout=timeout, **kw
        )

    run.env = env
    run.runs_dir = tmp_path / "runs"
    return run
