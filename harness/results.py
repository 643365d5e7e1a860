"""Run records: one schema-versioned JSON file per run, written atomically.

Layout: ``results/runs/<machine_id>/<utc>_<commit8>.json``. The file is rewritten
(temp file + ``os.replace``) after every task, so a crash, a kill or Ctrl-C leaves the
last complete version on disk: every finished task survives.

Schema (``schema: 1``)::

    {"schema": 1, "kind": "torchdrills.run", "run_id", "started_utc", "finished_utc",
     "status": "running" | "complete" | "interrupted", "mode": "check" | "bench" | "run",
     "argv", "device", "size", "fingerprint": {...}, "peak": {...}, "capabilities": {...},
     "tasks": {id: {"id", "status", "reason", "area", "seed", "title", "kind",
                    "duration_s", "size", "dtype", "checks": [...], "measurements": [...],
                    "metrics": {...}, "curves": [...], "tables": [...],
                    "skipped_parts": [...], "notes": [...], "warnings": [...], "error": str}}}
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_KIND = "torchdrills.run"
STATUSES = ("pass", "fail", "skip", "error")


class ResultsError(ValueError):
    """A results file that is missing, malformed or not a torchdrills run record."""


def default_runs_dir() -> Path:
    """``$DRILLS_RESULTS_DIR`` or ``<repo>/results/runs``."""
    env = os.environ.get("DRILLS_RESULTS_DIR")
    if env:
        return Path(env).expanduser()
    from harness.fingerprint import REPO_ROOT

    return REPO_ROOT / "results" / "runs"


def atomic_write_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new file, never half.

    Serialisation happens before anything touches the disk, so an unserialisable value
    (NaN, a tensor) leaves the old file as it was.
    """
    text = json.dumps(data, indent=indent, separators=(",", ":") if indent is None else None, allow_nan=False)
    atomic_write_text(path, text + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    ``os.replace`` is atomic only within one filesystem, hence the temp file beside the target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunWriter:
    """Holds one run record and rewrites its file after every task."""

    def __init__(
        self,
        *,
        mode: str,
        device: str,
        size: str | None,
        argv: list[str],
        fingerprint: dict[str, Any],
        peak: dict[str, Any] | None,
        runs_dir: Path | None = None,
        save: bool = True,
        capabilities: dict[str, bool] | None = None,
    ):
        now = _dt.datetime.now(_dt.timezone.utc)
        commit = (fingerprint.get("git") or {}).get("short") or "nogit"
        self.run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}_{commit}"
        self.save = save
        self.path = (runs_dir or default_runs_dir()) / fingerprint["machine_id"] / f"{self.run_id}.json"
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "kind": RECORD_KIND,
            "run_id": self.run_id,
            "started_utc": utc_now(),
            "finished_utc": None,
            "status": "running",
            "mode": mode,
            "argv": argv,
            "device": device,
            "size": size,
            "fingerprint": fingerprint,
            "peak": peak or {},
            "capabilities": capabilities or {},
            "tasks": {},
        }
        self._flush()

    def add(self, task_json: dict[str, Any]) -> None:
        self.data["tasks"][task_json["id"]] = task_json
        self._flush()

    def finish(self, status: str = "complete") -> None:
        self.data["status"] = status
        self.data["finished_utc"] = utc_now()
        self._flush()

    def _flush(self) -> None:
        if self.save:
            atomic_write_json(self.path, self.data)


def load_run(path: str | Path) -> dict[str, Any]:
    """Read and validate a run record.

    Raises:
        ResultsError: the file is missing, not JSON, not a torchdrills run record, or of
            a schema this version cannot read; the message names the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict) or data.get("kind") != RECORD_KIND:
        raise ResultsError(f'{path}: not a torchdrills run record (expected "kind": "{RECORD_KIND}")')
    if data.get("schema") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema {data.get('schema')!r} is not supported (this torchdrills reads schema {SCHEMA_VERSION})"
        )
    for key in ("run_id", "fingerprint", "tasks"):
        if key not in data:
            raise ResultsError(f"{path}: run record lacks the field {key!r}")
    if not isinstance(data["tasks"], dict):
        raise ResultsError(f"{path}: field 'tasks' must be an object keyed by task id")
    for tid, t in data["tasks"].items():
        if not isinstance(t, dict) or t.get("status") not in STATUSES:
            raise ResultsError(f"{path}: task {tid!r} has no valid status (one of {', '.join(STATUSES)})")
    data["_path"] = str(path)
    return data


def find_runs(runs_dir: Path | None = None, machine: str | None = None) -> list[Path]:
    """Run files under ``runs_dir`` (for one machine if given), oldest first by run id."""
    root = runs_dir or default_runs_dir()
    if not root.is_dir():
        return []
    pattern = f"{machine}/*.json" if machine else "*/*.json"
    return sorted(root.glob(pattern), key=lambda p: p.name)
