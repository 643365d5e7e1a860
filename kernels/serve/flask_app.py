"""The Flask app: the same predict contract as the FastAPI app, as a WSGI application.

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/models/{name}/predict`` and
``POST /v1/models/{name}/versions/{v}/predict``, with the same payloads
(:mod:`kernels.serve.schemas`) and the same status codes: 400 malformed JSON, 404 unknown
model, 413 a body over ``MAX_BODY_BYTES`` (Flask's ``MAX_CONTENT_LENGTH``: werkzeug refuses
it before reading), 422 an invalid payload. Flask has no request validation of its own, so
the body is read as bytes and validated by the pydantic model directly; every other
HTTP error (405, an unknown route) is turned into the JSON error body too, so no client ever
has to parse an HTML error page.

Served by waitress (threads in one process) or gunicorn (forked sync workers): both call
:func:`create_app` in the process that serves, so the model is read once per worker, after
the fork, and the intra-op thread count is set there.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from kernels.serve.model import Registry, predict_json
from kernels.serve.schemas import MAX_BODY_BYTES, ServeError, parse_predict


def create_app(settings: dict[str, Any], registry_cls: type[Registry] = Registry) -> Flask:
    """Build the WSGI app and load its models; ``settings`` as for the FastAPI app."""
    torch.set_num_threads(int(settings.get("threads", 1)))
    registry = registry_cls(settings["store"])
    for name, version, file in settings.get("models", []):
        registry.register(name, version, file)
    app = Flask("torchdrills_digits")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the same key order as the FastAPI app's bodies

    @app.errorhandler(ServeError)
    def serve_error(e: ServeError):
        return jsonify(e.body()), e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            n = request.content_length
            detail = f"body of {n} bytes exceeds the limit of {MAX_BODY_BYTES} bytes; send fewer rows per request"
            return jsonify({"error": "body_too_large", "detail": detail}), 413
        kind = (e.name or "http_error").lower().replace(" ", "_")
        return jsonify({"error": kind, "detail": e.description or kind}), e.code

    @app.get("/health")
    def health():
        return {"status": "ok", "pid": os.getpid(), "threads": torch.get_num_threads(), "loads": registry.loads}

    @app.get("/v1/models")
    def list_models():
        return {"models": registry.listing()}

    @app.post("/v1/models/<name>/predict")
    def predict(name: str):
        return _predict(name, None)

    @app.post("/v1/models/<name>/versions/<version>/predict")
    def predict_version(name: str, version: str):
        return _predict(name, version)

    def _predict(name: str, version: str | None):
        req = parse_predict(request.get_data(cache=False))  # raises 413 over the limit, 400/422 if bad
        return jsonify(predict_json(registry, name, version, req.inputs))

    return app
