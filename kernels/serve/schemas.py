"""The payloads every server of ``kernels.serve`` accepts and returns (pydantic v2 models).

One contract for the FastAPI app, the Flask app and the registry routes:

* ``PredictRequest``: ``{"inputs": [[64 numbers], ...]}``, 1 to :data:`MAX_ROWS` rows of
  :data:`N_FEATURES` raw pixel values each (sklearn digits: finite, 0..16, not yet scaled).
  Strict: a string or a boolean where a number belongs is refused (no coercion of
  ``"3"`` to 3.0), and so is any field besides ``inputs``.
* ``PredictResponse``: the model name and version that answered, the class of each row
  and the raw logits (float32 values widened to JSON doubles, so they round-trip exactly).
* ``ErrorBody``: ``{"error": KIND, "detail": "what is wrong and how to fix it"}``, the
  body of every 4xx (and of a 500, which the contract forbids for bad input).

Limits are stated once, in :mod:`kernels.serve.limits`: ``MAX_BODY_BYTES`` (413 above it,
checked before the body is parsed), ``MAX_ROWS`` (422 above it), pixels finite in 0..16.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernels.serve.limits import MAX_BODY_BYTES, MAX_ROWS, N_FEATURES, NAME_PATTERN, PIXEL_MAX, ServeError

__all__ = [  # the limits and ServeError are re-exported from kernels.serve.limits
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "N_FEATURES",
    "NAME_PATTERN",
    "PIXEL_MAX",
    "ActivateRequest",
    "ErrorBody",
    "PredictRequest",
    "PredictResponse",
    "RegisterRequest",
    "ServeError",
    "describe_validation",
    "json_reason",
    "parse_predict",
]

# finite and in range: pydantic's JSON parser accepts NaN and Infinity by default, and a NaN
# logit cannot be written back as JSON (the server would fail with a 500 instead of a 422)
Pixel = Annotated[float, Field(ge=0.0, le=PIXEL_MAX, allow_inf_nan=False)]
Row = Annotated[list[Pixel], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    """A batch to classify: ``inputs`` (N, 64) raw pixel values, 1 <= N <= MAX_ROWS."""

    model_config = ConfigDict(extra="forbid", strict=True)
    inputs: list[Row] = Field(min_length=1, max_length=MAX_ROWS, description="(N, 64) raw pixels in 0..16")


class PredictResponse(BaseModel):
    """The answer: ``predictions`` (N,) int classes and ``logits`` (N, 10) float32 values."""

    model: str
    version: str
    predictions: list[int]
    logits: list[list[float]]


class RegisterRequest(BaseModel):
    """Register ``version`` of a model from ``file``, a file name inside the server's store."""

    model_config = ConfigDict(extra="forbid", strict=True)
    version: str = Field(pattern=NAME_PATTERN)
    file: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}\.pt$", description="a .pt file name in the store, no folders")


class ActivateRequest(BaseModel):
    """Make ``version`` the one the unversioned predict route uses."""

    model_config = ConfigDict(extra="forbid", strict=True)
    version: str = Field(pattern=NAME_PATTERN)


class ErrorBody(BaseModel):
    """Every error response: a machine-readable ``error`` kind and a one-line ``detail``."""

    error: str
    detail: str


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """pydantic's error list as one line: ``inputs.0: List should have at least 64 items ...; ...``.

    Each entry names where (the JSON path), what is wrong and the offending value's type,
    so a client can fix its payload from the message alone; at most 3 entries are shown.
    """
    parts = []
    for e in errors[:3]:
        loc = tuple(e.get("loc", ()))
        loc = loc[1:] if loc[:1] == ("body",) else loc  # FastAPI prefixes the body's fields with "body"
        where = ".".join(str(x) for x in loc) or "body"
        msg = e.get("msg", "invalid")
        if "input" in e and e.get("type") not in ("missing", "json_invalid"):
            got = type(e["input"]).__name__
            msg += f" (got {got})"
        parts.append(f"{where}: {msg}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def parse_predict(raw: bytes) -> PredictRequest:
    """Parse and validate a predict body.

    Raises:
        ServeError: 400 ``malformed_json`` when the body is not JSON; 422 ``invalid_payload``
            naming the field, row and value when it does not fit :class:`PredictRequest`.
    """
    try:
        return PredictRequest.model_validate_json(raw)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        if any(err.get("type") == "json_invalid" for err in errors):
            raise ServeError(400, "malformed_json", "body is not valid JSON: " + json_reason(errors)) from None
        raise ServeError(422, "invalid_payload", describe_validation(errors)) from None


def json_reason(errors: list[dict[str, Any]]) -> str:
    ctx = errors[0].get("ctx") or {}
    return re.sub(r"\s+", " ", str(ctx.get("error", errors[0].get("msg", "")))).strip()
