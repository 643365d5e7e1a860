"""9.07 flask: waitress and gunicorn serve the Flask app under the same contract as FastAPI
(mutants: test_mutants.py); the app's error handling through Flask's test client, no server."""

import json

import pytest

from harness import REGISTRY, capabilities
from harness.serving import tagged_servers
from harness.testing import run_check
from kernels.serve.contract import bad_payloads, digits_batch, make_store

Task = REGISTRY.get("deployment.flask")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["flask"])), reason="needs flask")


def test_check_passes_under_waitress_and_gunicorn():
    with tagged_servers():
        rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["model loaded once per worker, threads set"]["n"] == 2
    (table,) = rec.tables
    assert [r["server"] for r in table["rows"]] == ["waitress"] * 8 + ["gunicorn"] * 8
    assert [r["status"] for r in table["rows"]] == [400, 422, 422, 422, 422, 422, 413, 404] * 2


def test_flask_app_answers_every_bad_payload_with_json(tmp_path):
    from kernels.serve.flask_app import create_app

    models = make_store(tmp_path, {"v1": 0}, steps=5)
    app = create_app({"store": str(tmp_path), "models": [["digits", "v1", "digits-v1.pt"]]})
    client = app.test_client()
    for label, path, body, code, keyword in bad_payloads("digits"):
        data = body if isinstance(body, bytes) else json.dumps(body)
        r = client.post(path, data=data, content_type="application/json")
        assert r.status_code == code and keyword.lower() in r.get_json()["detail"].lower(), label
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    x = digits_batch(3)
    r = client.post("/v1/models/digits/predict", json={"inputs": x.tolist()})
    assert r.get_json()["predictions"] == models["v1"].predict(x)[0].tolist()
