"""The serving contract's stated limits and its error type, with no third-party import.

Task files import these (through ``kernels.serve.contract``) even where the serving extras are
not installed, so that the tasks register and are skipped by capability instead of failing to
import; the pydantic models live in :mod:`kernels.serve.schemas`.
"""

from __future__ import annotations

#: Largest request body accepted, in bytes (413 above it, before parsing).
MAX_BODY_BYTES = 64 * 1024
#: Largest batch accepted per request, in rows (422 above it).
MAX_ROWS = 64
#: Values per row: sklearn digits' 8 x 8 pixels, flattened.
N_FEATURES = 64
#: Largest pixel value (sklearn digits are 0..16); a value outside [0, PIXEL_MAX] is refused.
PIXEL_MAX = 16.0
#: Model names and versions: letters, digits, ``.``, ``_``, ``-``; 1 to 32 characters.
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"


class ServeError(Exception):
    """A request the server refuses: HTTP ``status``, error ``kind`` and a one-line ``detail``."""

    def __init__(self, status: int, kind: str, detail: str):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail

    def body(self) -> dict[str, str]:
        return {"error": self.kind, "detail": self.detail}
