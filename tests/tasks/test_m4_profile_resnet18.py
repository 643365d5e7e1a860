"""m4.profile_resnet18: trace written and parsed, top 3 extracted; planted extraction bugs are caught."""

import json
import sys

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m4.profile_resnet18")
mod = sys.modules[Task.__module__]


class Cached(Task):
    """Profiles once for the whole file (a ResNet-18 step is the slow part); plants reuse it."""

    _cache = None

    def _profile(self, ctx, config):
        if Cached._cache is None:
            Cached._cache = super()._profile(ctx, config)
        return Cached._cache


def test_check_passes_and_writes_a_chrome_trace():
    rec = run_check(Cached)
    assert all(c["passed"] for c in rec.checks.values())
    _, trace = Cached._cache
    data = json.loads(trace.read_text())
    assert any(e.get("name") == "backward" for e in data["traceEvents"])
    assert any(str(trace) in n for n in rec.notes)


def test_top3_sorted_ascending_is_caught():
    class Ascending(Cached):
        def top_ops(self, averages, k=3, *, device_time=False):
            return sorted(mod.top_ops(averages, k), key=lambda r: r["self_ms"])

    expect_check_fails(Ascending, match="not sorted by self time, descending")


def test_top3_by_total_time_is_caught():
    class ByTotal(Cached):
        def top_ops(self, averages, k=3, *, device_time=False):
            rows = [
                {"op": e.key, "self_ms": e.cpu_time_total / 1e3, "calls": e.count}
                for e in averages
                if mod.is_operator(e.key)
            ]
            return sorted(rows, key=lambda r: r["self_ms"], reverse=True)[:k]

    expect_check_fails(ByTotal, match="more than the third extracted op")


def test_top3_including_our_own_ranges_is_caught():
    class Unfiltered(Cached):
        def top_ops(self, averages, k=3, *, device_time=False):
            rows = [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "calls": e.count} for e in averages]
            rows.sort(key=lambda r: r["self_ms"], reverse=True)
            # make sure a range is in: the 'forward' range has real self time (Python between ops)
            fwd = next(r for r in rows if r["op"] == "forward")
            return sorted([fwd] + [r for r in rows if r is not fwd][:2], key=lambda r: -r["self_ms"])

    expect_check_fails(Unfiltered, match="are not operator names")


def test_second_best_dropped_is_caught():
    class SkipsOne(Cached):
        def top_ops(self, averages, k=3, *, device_time=False):
            rows = mod.top_ops(averages, k + 1)
            return [rows[0], rows[2], rows[3]]

    expect_check_fails(SkipsOne, match="more than the third extracted op")


def test_is_operator():
    assert mod.is_operator("aten::convolution_backward")
    for name in (
        "forward",
        "ProfilerStep#3",
        "Optimizer.step#SGD.step",
        "",
        "[memory]",
        "cudaLaunchKernel",
        "cuLaunchKernelEx",
    ):
        assert not mod.is_operator(name)
