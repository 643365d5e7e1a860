"""Claims evaluate right on hand-written records, and a claim that names nothing real fails at registration."""

import pytest

from harness import Operator, impl
from harness.claims import evaluate, metric, speedup, time_ratio
from harness.registry import Registry, RegistryError, task


def row(impl_name, median, config="n=256", dtype="float32", **kw):
    return {"impl": impl_name, "config": config, "dtype": dtype, "median_ms": median, **kw}


ENTRY = {
    "status": "pass",
    "measurements": [
        row("slow", 10.0, "n=64"),
        row("fast", 5.0, "n=64"),
        row("slow", 40.0),
        row("fast", 8.0),
    ],
    "metrics": {"acc": 0.975},
}


def test_speedup_holds_at_the_last_shared_config():
    v = evaluate(speedup("fast", over="slow", at_least=3, text="fast >= 3x slow"), ENTRY, "cpu")
    assert (v["status"], v["value"], v["config"]) == ("holds", 5.0, "n=256")


def test_speedup_at_a_named_config_can_fail():
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t", config="n=64"), ENTRY, "cpu")
    assert (v["status"], v["value"]) == ("fails", 2.0)


def test_time_ratio_is_impl_over_reference():
    v = evaluate(time_ratio("fast", to="slow", at_most=0.25, text="t"), ENTRY, "cpu")
    assert (v["status"], v["value"]) == ("holds", 0.2)


def test_metric_claims_and_missing_metric():
    assert evaluate(metric("acc", ">=", 0.97, text="t"), ENTRY)["status"] == "holds"
    assert evaluate(metric("acc", ">=", 0.98, text="t"), ENTRY)["status"] == "fails"
    v = evaluate(metric("loss", "<", 1.0, text="t"), ENTRY)
    assert v["status"] == "not measured" and "not recorded" in v["why"]


def test_contended_measurement_gives_no_verdict():
    entry = {"status": "pass", "measurements": [row("slow", 40.0), row("fast", 8.0, contended=True)]}
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t"), entry, "cpu")
    assert v["status"] == "not measured" and "contended" in v["why"] and v["value"] == 5.0


def test_metric_from_a_contended_timing_gets_no_verdict():
    entry = {"status": "pass", "measurements": [row("capture", 900.0, contended=True)], "metrics": {"ms": 900.0}}
    v = evaluate(metric("ms", "<=", 100, text="t", measured_by="capture"), entry, "cpu")
    assert v["status"] == "not measured" and "contended" in v["why"] and v["value"] == 900.0


def test_skipped_task_and_other_device_are_not_measured():
    skipped = {"status": "skip", "reason": "needs cuda"}
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t"), skipped, "cpu")
    assert v["status"] == "not measured" and "needs cuda" in v["why"]
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t", device="cuda"), ENTRY, "cpu")
    assert v["status"] == "not measured" and "cuda" in v["why"]


def test_unlike_configs_are_never_compared():
    entry = {"status": "pass", "measurements": [row("slow", 40.0, "n=256"), row("fast", 8.0, "n=128")]}
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t"), entry, "cpu")
    assert v["status"] == "not measured" and "shared config" in v["why"]


def test_old_records_and_bad_medians_do_not_crash():
    entry = {"status": "pass", "measurements": [row("slow", 0.0), row("fast", float("nan")), "junk"]}
    v = evaluate(speedup("fast", over="slow", at_least=3, text="t"), entry, "cpu")
    assert v["status"] == "not measured"


class _Base(Operator):
    """doc"""

    sizes = {"tiny": 1}

    def inputs(self, config, device, dtype, seed):
        return ()

    @impl(baseline=True)
    def ref(self):
        return lambda: None


def test_claim_naming_an_unknown_implementation_fails_registration():
    claims = (speedup("nope", over="ref", at_least=2, text="nope >= 2x"),)
    cls = type("Bad", (_Base,), {"claims": claims, "__doc__": "doc"})
    with pytest.raises(RegistryError, match="nope >= 2x.*'nope'"):
        task("zz.bad", seed="1.01", title="t", registry=Registry())(cls)


def test_metric_claim_needs_a_declared_metric():
    claims = (metric("acc", ">=", 0.9, text="acc >= 0.9"),)
    with pytest.raises(RegistryError, match="does not declare"):
        task("zz.m", seed="1.01", title="t", registry=Registry())(
            type("M", (_Base,), {"claims": claims, "__doc__": "d"})
        )
    ok = type("M2", (_Base,), {"claims": claims, "metrics": {"acc": "held-out accuracy, fraction"}, "__doc__": "d"})
    task("zz.m2", seed="1.01", title="t", registry=Registry())(ok)


def test_bad_claim_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        speedup("a", over="b", at_least=float("nan"), text="t")
    with pytest.raises(ValueError, match="op"):
        metric("a", "=>", 1.0, text="t")
