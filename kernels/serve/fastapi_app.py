"""The FastAPI app: predict routes for 9.03 and the model-registry REST API for 9.06.

Routes (JSON in, JSON out; every error is :class:`kernels.serve.schemas.ErrorBody`):

==========================================  ============================================
``GET  /health``                            pid, intra-op threads, model files loaded
``GET  /v1/models``                         every model, its versions and the active one
``POST /v1/models/{name}/predict``          the active version answers (PredictRequest)
``POST /v1/models/{name}/versions/{v}/predict``  that version answers
``POST /v1/models/{name}/versions``         register a version from a store file (201)
``PUT  /v1/models/{name}/active``           activate a version
``DELETE /v1/models/{name}/versions/{v}``   delete a version (409 if active)
==========================================  ============================================

Status codes: 400 malformed JSON, 404 unknown model or version, 409 conflicts, 413 a body
over ``MAX_BODY_BYTES`` (refused by :class:`BodyLimit` before it is read in full), 422 a
payload that does not fit its pydantic model. The predict routes are plain ``def``
functions: FastAPI runs them in its thread pool, so a forward pass never blocks the event
loop, and the registry's lock keeps each answer's version and weights together.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kernels.serve.model import Registry, predict_json
from kernels.serve.schemas import (
    MAX_BODY_BYTES,
    ActivateRequest,
    ErrorBody,
    PredictRequest,
    PredictResponse,
    RegisterRequest,
    ServeError,
    describe_validation,
    json_reason,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what}
    for code, what in ((400, "malformed JSON"), (404, "unknown model or version"), (413, "body too large"))
}


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by Content-Length or as it streams in."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _too_large(int(length), self.limit)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:  # chunked upload without a length: stop reading here
                raise ServeError(413, "body_too_large", f"body exceeds the limit of {self.limit} bytes")
            return msg

        try:
            await self.app(scope, counted, send)
        except ServeError as e:
            await JSONResponse(e.body(), status_code=e.status)(scope, receive, send)


def _too_large(n: int, limit: int) -> JSONResponse:
    detail = f"body of {n} bytes exceeds the limit of {limit} bytes; send fewer rows per request"
    return JSONResponse({"error": "body_too_large", "detail": detail}, status_code=413)


def create_app(settings: dict[str, Any], registry_cls: type[Registry] = Registry) -> FastAPI:
    """Build the app and load its models (called once in each server process, after any fork).

    Args:
        settings: ``store`` (folder of .pt files), ``models`` ([name, version, file] to
            register at start), ``threads`` (torch intra-op threads in this process).
        registry_cls: the registry implementation (a test or mutant may pass another).
    """
    torch.set_num_threads(int(settings.get("threads", 1)))
    registry = registry_cls(settings["store"])
    for name, version, file in settings.get("models", []):
        registry.register(name, version, file)
    app = FastAPI(title="torchdrills digits server", version="1", responses=ERRORS)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.state.registry = registry

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = "body is not valid JSON: " + json_reason(errors)
            return JSONResponse({"error": "malformed_json", "detail": detail}, status_code=400)
        return JSONResponse({"error": "invalid_payload", "detail": describe_validation(errors)}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid(), "threads": torch.get_num_threads(), "loads": registry.loads}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"models": registry.listing()}

    @app.post("/v1/models/{name}/predict", response_model=PredictResponse)
    def predict(name: str, req: PredictRequest) -> dict[str, Any]:
        return predict_json(registry, name, None, req.inputs)

    @app.post("/v1/models/{name}/versions/{version}/predict", response_model=PredictResponse)
    def predict_version(name: str, version: str, req: PredictRequest) -> dict[str, Any]:
        return predict_json(registry, name, version, req.inputs)

    @app.post("/v1/models/{name}/versions", status_code=201, responses={409: ERRORS[404] | {"description": "exists"}})
    def register(name: str, req: RegisterRequest) -> dict[str, Any]:
        registry.register(name, req.version, req.file)
        return {"registered": req.version, "models": registry.listing()}

    @app.put("/v1/models/{name}/active")
    def activate(name: str, req: ActivateRequest = Body()) -> dict[str, Any]:
        registry.activate(name, req.version)
        return {"active": req.version}

    @app.delete("/v1/models/{name}/versions/{version}", responses={409: ERRORS[404] | {"description": "active"}})
    def delete(name: str, version: str) -> dict[str, Any]:
        registry.delete(name, version)
        return {"deleted": version}

    return app
