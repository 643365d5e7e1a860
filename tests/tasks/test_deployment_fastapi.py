"""9.03 fastapi: a real uvicorn server keeps the contract (its mutants, a 500 on bad payloads and
skipped input scaling: test_mutants.py); the payload models and the registry on their own."""

import pytest

from harness import REGISTRY, capabilities
from harness.serving import tagged_servers
from harness.testing import run_check
from kernels.serve.contract import bad_payloads, make_store
from kernels.serve.model import Registry
from kernels.serve.schemas import MAX_ROWS, ServeError, parse_predict

Task = REGISTRY.get("deployment.fastapi")
needs_fastapi = pytest.mark.skipif(bool(capabilities.missing(["fastapi"])), reason="needs fastapi")


@needs_fastapi
def test_check_passes_and_records_each_bad_payload():
    with tagged_servers():  # raises if the server or a child outlives the check
        rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in ("predictions = in-process", "bad payload -> 4xx", "error names the problem", "nothing left running"):
        assert name in rec.checks
    (table,) = rec.tables
    assert [r["status"] for r in table["rows"]] == [400, 422, 422, 422, 422, 422, 413, 404]
    assert all('"error"' in r["body"] and '"detail"' in r["body"] for r in table["rows"])
    assert rec.metrics["bad_payloads_rejected"] == 8


def test_the_payload_model_names_each_problem():
    # the same payloads the servers get; 413 and 404 are decided before / after parsing
    for label, _, body, code, keyword in bad_payloads("digits"):
        if code in (413, 404):
            continue
        raw = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
        with pytest.raises(ServeError) as e:
            parse_predict(raw)
        assert e.value.status == code and keyword.lower() in e.value.detail.lower(), label
    with pytest.raises(ServeError, match="at most 64"):
        parse_predict(b'{"inputs": ' + str([[0.0] * 64] * (MAX_ROWS + 1)).encode() + b"}")
    with pytest.raises(ServeError, match="valid number"):  # strict: no bool-as-number
        parse_predict(b'{"inputs": [[true' + b", 0.0" * 63 + b"]]}")
    assert parse_predict(b'{"inputs": [[' + b", ".join([b"1"] * 64) + b"]]}").inputs[0][0] == 1.0


def test_registry_versions_and_errors(tmp_path):
    make_store(tmp_path, {"v1": 0, "v2": 1}, steps=5)
    reg = Registry(tmp_path)
    reg.register("digits", "v1", "digits-v1.pt")
    reg.register("digits", "v2", "digits-v2.pt")
    assert reg.listing() == [{"name": "digits", "versions": ["v1", "v2"], "active": "v1"}]
    assert reg.get("digits")[0] == "v1" and reg.get("digits", "v2")[0] == "v2"
    for call, status in [
        (lambda: reg.register("digits", "v1", "digits-v1.pt"), 409),
        (lambda: reg.register("digits", "v3", "../digits-v1.pt"), 422),
        (lambda: reg.get("nope"), 404),
        (lambda: reg.activate("digits", "v9"), 404),
        (lambda: reg.delete("digits", "v1"), 409),
    ]:
        with pytest.raises(ServeError) as e:
            call()
        assert e.value.status == status
    reg.activate("digits", "v2")
    reg.delete("digits", "v1")
    assert reg.listing()[0]["versions"] == ["v2"] and reg.loads == 2
