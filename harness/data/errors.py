"""Errors raised by the data readers.

Every reader in ``harness.data`` reports a malformed file with :class:`DataFormatError`
and a missing file with :class:`DataNotFoundError`, so a caller can catch one type per
failure and the message always names the file, what was expected and what was found.
"""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """A data file is not in the format its reader expects.

    Subclasses ``ValueError`` (bad input, as torch would raise). The message has the form
    ``"<path>: expected <expected>, found <found>. <fix>"``; the parts are kept as
    attributes ``path``, ``expected``, ``found`` and ``fix`` for callers that log them.
    """

    def __init__(self, path: str | os.PathLike, expected: str, found: str, fix: str = ""):
        self.path = os.fspath(path)
        self.expected = expected
        self.found = found
        self.fix = fix
        msg = f"{self.path}: expected {expected}, found {found}"
        if fix:
            msg += f". {fix}"
        super().__init__(msg)


class DataNotFoundError(FileNotFoundError):
    """Files a reader needs are absent.

    Subclasses ``FileNotFoundError``. The message lists every path that was tried and says
    how to provide the data (``--data-dir``, ``DRILLS_DATA_DIR`` or ``drills data fetch``).
    """

    def __init__(self, what: str, tried: list[str] | tuple[str, ...], fix: str = ""):
        self.what = what
        self.tried = [os.fspath(t) for t in tried]
        shown = ", ".join(self.tried[:8]) + (" ..." if len(self.tried) > 8 else "")
        msg = f"{what} not found; looked for: {shown}"
        if fix:
            msg += f". {fix}"
        super().__init__(msg)
