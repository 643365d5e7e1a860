"""Wrong servers: the mutants of the serving tasks (each one a plausible mistake).

Each factory takes the same settings dict as the right ones and is started the same way
(``--app kernels.serve.wrong:NAME``), so the task's check meets the bug in a real server:

* ``*_unvalidated``: parses the body by hand (``json.loads`` and ``torch.tensor``) with no
  pydantic model, so a wrong field, shape or dtype surfaces as an exception: HTTP 500;
* ``*_raw_pixels``: skips the input scaling (x / 16) the model was trained with: answers
  200 with plausible-looking but wrong classes;
* ``fastapi_whole_pixels``: raises on a fractional pixel value (the digits it was tried on
  are whole numbers): a 500 that only a fuzzer's inputs reach;
* ``fastapi_leaky_versions``: the registry reuses one module per model name "to save
  memory", so registering v2 overwrites the weights v1's route answers with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from fastapi import Request  # module level: FastAPI resolves the string annotation in this module

from kernels.serve import fastapi_app, flask_app
from kernels.serve.model import Registry, ServedModel


class RawPixelsModel(ServedModel):
    """WRONG: feeds raw 0..16 pixels to a network trained on [0, 1] inputs."""

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return x


class WholePixelsModel(ServedModel):
    """WRONG: assumes pixels are whole numbers (sklearn's are) and raises otherwise: a 500."""

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.equal(x, x.round()):
            raise ValueError("pixel values must be whole numbers")
        return x / 16.0


class WholePixelsRegistry(Registry):
    def _read(self, file: str) -> ServedModel:
        return WholePixelsModel(super()._read(file).mlp)


class RawPixelsRegistry(Registry):
    def _read(self, file: str) -> ServedModel:
        return RawPixelsModel(super()._read(file).mlp)


class LeakyRegistry(Registry):
    """WRONG: one module per model name; a new version's weights are copied into it."""

    def _read(self, file: str) -> ServedModel:
        fresh = super()._read(file)
        shared = getattr(self, "_shared", None)
        if shared is None:
            self._shared = fresh
            return fresh
        shared.mlp.load_state_dict(fresh.mlp.state_dict())  # every version now has these weights
        return shared


def _unchecked(registry: Registry, name: str, version: str | None, raw: bytes) -> dict[str, Any]:
    payload = json.loads(raw)  # WRONG: no schema; any mistake below is a 500
    used, model = registry.get(name, version)
    classes, logits = model.predict(torch.tensor(payload["inputs"], dtype=torch.float32))
    return {"model": name, "version": used, "predictions": classes.tolist(), "logits": logits.tolist()}


def fastapi_unvalidated(settings: dict[str, Any]):
    app = fastapi_app.create_app(settings)
    registry = app.state.registry
    route = "/v1/models/{name}/predict"  # replaced; the versioned route stays validated
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != route]

    @app.post(route)
    async def predict(name: str, request: Request) -> dict[str, Any]:
        return _unchecked(registry, name, None, await request.body())

    return app


def fastapi_raw_pixels(settings: dict[str, Any]):
    return fastapi_app.create_app(settings, registry_cls=RawPixelsRegistry)


def fastapi_whole_pixels(settings: dict[str, Any]):
    return fastapi_app.create_app(settings, registry_cls=WholePixelsRegistry)


def fastapi_leaky_versions(settings: dict[str, Any]):
    return fastapi_app.create_app(settings, registry_cls=LeakyRegistry)


def flask_unvalidated(settings: dict[str, Any]):
    from flask import jsonify, request

    app = flask_app.create_app(settings)
    registry = Registry(Path(settings["store"]))
    for name, version, file in settings.get("models", []):
        registry.register(name, version, file)

    def predict(name: str):
        return jsonify(_unchecked(registry, name, None, request.get_data()))

    app.view_functions["predict"] = predict  # replaces the validated route
    app.register_error_handler(Exception, lambda e: (jsonify({"error": "internal", "detail": str(e)}), 500))
    return app


def flask_raw_pixels(settings: dict[str, Any]):
    return flask_app.create_app(settings, registry_cls=RawPixelsRegistry)
