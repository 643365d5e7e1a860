"""harness.task.measure_or_skip: a variant its prepare() cannot run here is a skipped part, not an error."""

from __future__ import annotations

import dataclasses

import pytest

from harness import Context, Prepared, System, task
from harness.registry import Registry
from harness.task import measure_or_skip


@dataclasses.dataclass(frozen=True)
class _Cfg:
    n: int = 1


@task("m5.measure_or_skip_probe", seed="m5", title="probe", registry=Registry())
class _Probe(System):
    """A registry-less task whose prepare() times a no-op, refuses 'gone' and breaks on 'broken'."""

    sizes = {"tiny": _Cfg()}
    torn_down = 0

    def prepare(self, ctx, impl, config):
        if impl == "gone":
            raise NotImplementedError("not in this build " + "x" * 300)
        if impl == "broken":
            raise RuntimeError("a bug")
        return Prepared(fn=lambda: None, teardown=lambda: setattr(_Probe, "torn_down", _Probe.torn_down + 1))


def test_measures_skips_with_the_reason_and_lets_bugs_through(monkeypatch):
    ctx = Context(_Probe, mode="bench")
    monkeypatch.setattr(ctx, "measure", lambda impl, prepared, config=None: prepared.fn() or "timed")
    probe = _Probe()
    assert measure_or_skip(probe, ctx, "ok", _Cfg()) == "timed" and _Probe.torn_down == 1
    assert measure_or_skip(probe, ctx, "gone", _Cfg()) is None
    skipped = ctx.record.skipped_parts[-1]
    assert skipped["part"] == "timing of gone" and skipped["reason"].startswith("not in this build")
    assert len(skipped["reason"]) == 200
    with pytest.raises(RuntimeError, match="a bug"):
        measure_or_skip(probe, ctx, "broken", _Cfg())
