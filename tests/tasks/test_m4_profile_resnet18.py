"""m4.profile_resnet18: trace written and parsed, top 3 extracted; its mutants: test_mutants.py."""

import json
import shutil

from harness import REGISTRY
from harness.profiling import is_operator
from harness.testing import run_check

Task = REGISTRY.get("m4.profile_resnet18")


class Cached(Task):
    """Profiles once for the whole file (a ResNet-18 step is the slow part)."""

    _cache = None

    def _profile(self, ctx, config):
        if Cached._cache is None:
            Cached._cache = super()._profile(ctx, config)
        return Cached._cache


def test_check_passes_and_writes_a_chrome_trace(monkeypatch):
    monkeypatch.setenv("DRILLS_KEEP_WORKDIR", "1")  # the trace outlives the check only when asked to
    rec = run_check(Cached)
    assert all(c["passed"] for c in rec.checks.values())
    _, trace = Cached._cache
    data = json.loads(trace.read_text())
    shutil.rmtree(trace.parent)
    assert any(e.get("name") == "backward" for e in data["traceEvents"])
    assert any(str(trace) in n for n in rec.notes)


def test_is_operator():
    assert is_operator("aten::convolution_backward")
    for name in (
        "forward",
        "ProfilerStep#3",
        "Optimizer.step#SGD.step",
        "",
        "[memory]",
        "cudaLaunchKernel",
        "cuLaunchKernelEx",
    ):
        assert not is_operator(name)
