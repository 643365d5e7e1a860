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

Limits are stated here once, so a client can read them: :data:`MAX_BODY_BYTES` (413 above
it, checked before the body is parsed) and :data:`MAX_ROWS` (422 above it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Largest request body accepted, in bytes (413 above it, before parsing).
MAX_BODY_BYTES = 64 * 1024
#: Largest batch accepted per request, in rows (422 above it).
MAX_ROWS = 64
#: Values per row: sklearn digits' 8 x 8 pixels, flattened.
N_FEATURES = 64
#: Model names and versions: letters, digits, ``.``, ``_``, ``-``; 1 to 32 characters.
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"

#: Largest pixel value (sklearn digits are 0..16); a value outside [0, PIXEL_MAX] is refused.
PIXEL_MAX = 16.0

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


class ServeError(Exception):
    """A request the server refuses: HTTP ``status``, error ``kind`` and a one-line ``detail``."""

    def __init__(self, status: int, kind: str, detail: str):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail

    def body(self) -> dict[str, str]:
        return {"error": self.kind, "detail": self.detail}


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
