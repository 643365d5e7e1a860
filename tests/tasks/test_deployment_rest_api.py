"""9.06 rest_api: registry routes, versioned predictions, consistent answers while the active
version is swapped under load, schemathesis finds no 5xx (mutants, a registry that shares weights
between versions and a 500 on bad payloads: test_mutants.py)."""

import importlib.util

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.serving import tagged_servers
from harness.testing import run_check
from kernels.serve.contract import digits_batch, make_store
from kernels.serve.wrong import LeakyRegistry

Task = REGISTRY.get("deployment.rest_api")


@pytest.mark.skipif(bool(capabilities.missing(["fastapi"])), reason="needs fastapi")
def test_check_passes():
    with tagged_servers():
        rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in (
        "register",
        "register twice",
        "activate",
        "delete the active version",
        "unknown version",
        "consistent answers while swapping",
        "logits = in-process",
        "nothing left running",
    ):
        assert name in rec.checks, name
    assert rec.metrics["swaps_under_load"] >= 2
    if importlib.util.find_spec("schemathesis"):
        assert rec.checks["fuzz: no 5xx"]["passed"] and rec.metrics["fuzz_cases"] > 0
    else:
        assert any("schemathesis" in p["reason"] for p in rec.skipped_parts)


def test_the_leaky_registry_really_mixes_versions(tmp_path):
    models = make_store(tmp_path, {"v1": 0, "v2": 1}, steps=5)
    x = digits_batch(4)
    reg = LeakyRegistry(tmp_path)
    reg.register("digits", "v1", "digits-v1.pt")
    reg.register("digits", "v2", "digits-v2.pt")
    _, v1 = reg.get("digits", "v1")
    assert not torch.allclose(v1.predict(x)[1], models["v1"].predict(x)[1])
    assert torch.equal(v1.predict(x)[1], models["v2"].predict(x)[1])
