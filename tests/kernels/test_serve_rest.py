"""kernels.serve.rest.expect_answer: the status and, with ``want``, the whole JSON answer are checked
(the request itself is replaced here; the real server path runs in tests/tasks/test_deployment_rest_api.py)."""

import pytest

import kernels.serve.rest as rest
from harness import REGISTRY
from harness.checks import CheckFailed
from harness.context import Context

pytest.importorskip("fastapi")


def _ctx():
    return Context(REGISTRY.get("deployment.rest_api"), mode="check")


def test_expect_answer_checks_status_and_answer(monkeypatch):
    monkeypatch.setattr(rest, "request", lambda port, method, path, body: (200, {"models": []}))
    ctx = _ctx()
    assert rest.expect_answer(ctx, 1, "list", "GET", "/v1/models", want={"models": []}) == {"models": []}
    assert ctx.record.checks["list"] == {"name": "list", "passed": True, "n": 2}
    with pytest.raises(CheckFailed, match="list: expected HTTP 201, got 200"):
        rest.expect_answer(ctx, 1, "list", "GET", "/v1/models", status=201)
    with pytest.raises(CheckFailed, match="other: expected {'models': \\['x'\\]}, got {'models': \\[\\]}"):
        rest.expect_answer(ctx, 1, "other", "GET", "/v1/models", want={"models": ["x"]})


def test_expect_answer_without_json_returns_empty(monkeypatch):
    monkeypatch.setattr(rest, "request", lambda port, method, path, body: (204, None))
    assert rest.expect_answer(_ctx(), 1, "delete", "DELETE", "/v1/models/m/versions/v2", status=204) == {}
