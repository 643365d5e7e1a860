"""Run records: one schema-versioned JSON file per run, written atomically.

Layout: ``results/runs/<machine_id>/<utc>-<suffix>_<commit8>.json``. The suffix (pid and
random hex) and an exclusive create keep two runs started in the same second apart. The
file is rewritten (temp file + ``os.replace``) after every task, so a crash, a kill or
Ctrl-C leaves the last complete version on disk: every finished task survives.

Nothing measured is lost to a bad value or a bad disk: every entry is sanitised before
it is stored (NaN/inf become null with a warning, tensors and numpy values become
numbers or lists, anything else its ``str``), and when the results folder cannot be
written any more (made read-only, disk full) the record goes on in memory and to a
fallback folder (``$TMPDIR/drills-results``), and the writer says where.

Schema (``schema: 1``, checked by :mod:`harness.record_schema` on every read)::

    {"schema": 1, "kind": "torchdrills.run", "run_id", "started_utc", "finished_utc",
     "status": "running" | "complete" | "interrupted", "mode": "check" | "bench" | "run",
     "argv", "device", "size", "pid", "fingerprint": {...}, "peak": {...}, "capabilities": {...},
     "warnings": [...],
     "tasks": {id: {"id", "status", "reason", "area", "seed", "title", "kind",
                    "duration_s", "size", "dtype", "checks": [...], "measurements": [...],
                    "metrics": {...}, "curves": [...], "tables": [...],
                    "skipped_parts": [...], "notes": [...], "warnings": [...], "error": str,
                    "stdout": str, "stderr": str}}}
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_KIND = "torchdrills.run"
STATUSES = ("pass", "fail", "skip", "error")
#: Largest results file read (bytes); a bigger one is refused rather than parsed.
MAX_RECORD_BYTES = 512 * 2**20
#: Most sanitising warnings kept per entry (a table of NaNs must not bury the record).
MAX_SANITISE_WARNINGS = 20


class ResultsError(ValueError):
    """A results file that is missing, malformed or not a torchdrills run record."""


def default_runs_dir() -> Path:
    """``$DRILLS_RESULTS_DIR`` or ``<repo>/results/runs``."""
    env = os.environ.get("DRILLS_RESULTS_DIR")
    if env:
        return Path(env).expanduser()
    from harness.fingerprint import REPO_ROOT

    return REPO_ROOT / "results" / "runs"


def fallback_runs_dir() -> Path:
    """Where records go when the results folder cannot be written: ``$TMPDIR/drills-results``."""
    return Path(tempfile.gettempdir()) / "drills-results"


# -- sanitising -----------------------------------------------------------------------------


def sanitise(value: Any, where: str = "", warnings: list[str] | None = None) -> Any:
    """A JSON-ready copy of ``value``; what was changed is appended to ``warnings``.

    dicts (keys become ``str``), lists and tuples are copied; ``bool``/``int``/``str``/None
    are kept; non-finite floats become None with a warning naming ``where`` (the field
    path); tensors and numpy values become a number (one element) or a (nested) list;
    anything else becomes its ``str``. Never raises.
    """
    warn = warnings if warnings is not None else []
    # an explicit stack, not recursion: a pathological nesting must not raise here
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, str]] = [(value, root, 0, where)]
    while stack:
        v, parent, key, path = stack.pop()
        if isinstance(v, (bool, int, str)) or v is None:
            parent[key] = v
            continue
        if isinstance(v, float):
            if math.isfinite(v):
                parent[key] = v
            else:
                parent[key] = None
                if len(warn) < MAX_SANITISE_WARNINGS:
                    warn.append(f"{path or 'value'}: {v} is not JSON; recorded as null")
            continue
        if isinstance(v, dict):
            d: dict[str, Any] = {}
            parent[key] = d
            for k, x in reversed(v.items()):  # reversed: the stack pops them in order
                d[str(k)] = None
                stack.append((x, d, str(k), f"{path}.{k}" if path else str(k)))
            continue
        if isinstance(v, (list, tuple)):
            lst: list[Any] = [None] * len(v)
            parent[key] = lst
            for i in reversed(range(len(v))):
                stack.append((v[i], lst, i, f"{path}[{i}]"))
            continue
        conv = _array_like(v)
        if conv is not _NOT_ARRAY:
            stack.append((conv, parent, key, path))
            continue
        try:
            parent[key] = str(v)
        except Exception:  # a __str__ that raises: the type name still says what it was
            parent[key] = f"<unprintable {type(v).__name__}>"
    return root[0]


_NOT_ARRAY = object()


def _array_like(v: Any) -> Any:
    """A tensor / numpy array / numpy scalar as a Python number or list; else ``_NOT_ARRAY``."""
    try:
        if hasattr(v, "detach") and hasattr(v, "tolist"):  # torch.Tensor
            v = v.detach().cpu()
        if hasattr(v, "tolist") and hasattr(v, "dtype"):  # torch / numpy arrays and scalars
            return v.tolist()
        if hasattr(v, "item") and hasattr(v, "dtype"):
            return v.item()
    except Exception:
        return _NOT_ARRAY
    return _NOT_ARRAY


def sanitise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A task entry that ``json.dumps(allow_nan=False)`` accepts; changes become entry warnings.

    ``metrics`` already null (a NaN/inf turned null when it was recorded) get a warning too.
    """
    warns: list[str] = []
    out = sanitise(entry, "", warns)
    if not isinstance(out, dict):
        return {"id": str(entry), "status": "error", "reason": "the task's entry was not a dict"}
    metrics = out.get("metrics")
    for name, v in metrics.items() if isinstance(metrics, dict) else ():
        if v is None and not any(w.startswith(f"metrics.{name}:") for w in warns):
            warns.append(f"metrics.{name}: not finite (NaN or inf); recorded as null")
    if warns:
        old = out.get("warnings")
        old = old if isinstance(old, list) else []
        out["warnings"] = old + [w for w in warns if w not in old]
    return out


# -- writing --------------------------------------------------------------------------------


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


def check_writable_dir(path: Path, what: str) -> Path:
    """Create folder ``path`` if needed and prove a file can be made in it.

    Raises:
        ResultsError: ``path`` is a file, lies under a file, or cannot be written; the
            message names ``what`` (e.g. ``--results-dir``) and the fix.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ResultsError(f"{what} {path}: is a file, not a folder; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".drills-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = "a part of it is a file" if isinstance(e, (NotADirectoryError, FileExistsError)) else e.strerror
        raise ResultsError(f"{what} {path}: cannot write there ({why}); give a writable folder") from None
    return path


def check_writable_file(path: Path, what: str) -> Path:
    """Prove that file ``path`` can be written (its folder is created); it is not touched.

    Raises:
        ResultsError: ``path`` is an existing folder, lies under a file, or its folder
            cannot be written.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ResultsError(f"{what} {path}: is a folder; give a file name such as {path / 'index.html'}")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ResultsError(f"{what} {path}: lies under the file {above}; give a path in a folder")
    check_writable_dir(path.parent, f"{what} {path}: its folder")
    if path.exists() and not os.access(path, os.W_OK):
        # os.replace needs only the folder's permission, but a read-only file means "keep it"
        raise ResultsError(f"{what} {path}: the file is read-only; give another file or make it writable")
    return path


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunWriter:
    """Holds one run record and rewrites its file after every task.

    The first write happens in the constructor and creates the file exclusively
    (``O_EXCL``): a run id another run already took gets a new suffix. If that first
    write fails, :class:`ResultsError` is raised (nothing has run yet: a usage error).
    A later write that fails does not raise: the record stays in :attr:`data`, the
    problem is reported through ``on_warning``, and writing moves to
    :func:`fallback_runs_dir` (or, if that fails too, stops: :attr:`path` is then None).

    Attributes:
        path: the file the record is written to, or None (not saved / nowhere writable).
        problems: one line per write failure, for the end-of-run summary.
    """

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
        on_warning: Callable[[str], None] | None = None,
    ):
        now = _dt.datetime.now(_dt.timezone.utc)
        self._commit = (fingerprint.get("git") or {}).get("short") or "nogit"
        self._stamp = now.strftime("%Y%m%dT%H%M%SZ")
        self._machine = str(fingerprint.get("machine_id") or "unknown-machine")
        self.run_id = self._new_id()
        self.save = save
        self.on_warning = on_warning
        self.problems: list[str] = []
        self._fallen_back = False
        self.path: Path | None = None
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "kind": RECORD_KIND,
            "run_id": self.run_id,
            "started_utc": utc_now(),
            "finished_utc": None,
            "status": "running",
            "mode": mode,
            "argv": [str(a) for a in argv],
            "device": device,
            "size": size,
            "pid": os.getpid(),
            "fingerprint": fingerprint,
            "peak": peak or {},
            "capabilities": capabilities or {},
            "tasks": {},
        }
        if save:
            root = runs_dir or default_runs_dir()
            try:
                self.path = self._claim(root / self._machine)
                self._write()
            except OSError as e:
                raise ResultsError(
                    f"results folder {root}: cannot write the run record there ({_why(e)}); "
                    "pass a writable --results-dir"
                ) from None

    def _new_id(self, attempt: int = 0) -> str:
        again = f"-{attempt}" if attempt else ""  # the attempt number: unique even if the random part repeats
        return f"{self._stamp}-{os.getpid()}{secrets.token_hex(2)}{again}_{self._commit}"

    def _claim(self, folder: Path) -> Path:
        """Create ``folder/<run_id>.json`` exclusively; a taken id gets a new suffix."""
        folder.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 101):
            p = folder / f"{self.run_id}.json"
            try:
                os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return p
            except FileExistsError:
                self.run_id = self.data["run_id"] = self._new_id(attempt)
        raise FileExistsError(f"no free run id in {folder}")

    def add(self, task_json: dict[str, Any]) -> None:
        entry = sanitise_entry(task_json)
        self.data["tasks"][str(entry.get("id", task_json.get("id")))] = entry
        self._flush()

    def finish(self, status: str = "complete") -> None:
        self.data["status"] = status
        self.data["finished_utc"] = utc_now()
        self._flush()

    def _write(self) -> None:
        assert self.path is not None
        atomic_write_json(self.path, self.data)

    def _warn(self, msg: str) -> None:
        self.problems.append(msg)
        if self.on_warning is not None:
            self.on_warning(msg)

    def _flush(self) -> None:
        if not self.save or self.path is None:
            return
        try:
            self._write()
            return
        except OSError as e:
            failed, why = self.path, _why(e)
        if self._fallen_back:
            self.path = None
            self._warn(f"cannot write the run record to {failed} ({why}); it is kept in memory only")
            return
        self._fallen_back = True
        try:
            self.path = self._claim(fallback_runs_dir() / self._machine)
            self._write()
        except OSError as e2:
            self.path = None
            self._warn(
                f"cannot write the run record to {failed} ({why}) nor to the fallback "
                f"{fallback_runs_dir()} ({_why(e2)}); it is kept in memory only"
            )
            return
        self._warn(f"cannot write the run record to {failed} ({why}); writing it to {self.path} instead")


def mark_abandoned(path: Path) -> bool:
    """Mark a record still ``running`` as ``interrupted``: its ``drills`` process is gone (SIGKILL).

    Called by the run's worker process when it finds itself orphaned; True if it changed the file.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("status") != "running":
        return False
    data["status"] = "interrupted"
    data["finished_utc"] = utc_now()
    warns = data.get("warnings") if isinstance(data.get("warnings"), list) else []
    data["warnings"] = [*warns, "the drills process ended without closing this record (killed); its worker marked it"]
    atomic_write_json(Path(path), data)
    return True


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


# -- reading --------------------------------------------------------------------------------


class _NonFinite(float):
    """A NaN/Infinity token found while parsing; located and refused after the parse."""


def _find_non_finite(data: Any) -> str | None:
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        v, path = stack.pop()
        if isinstance(v, _NonFinite):
            return path or "(top level)"
        if isinstance(v, dict):
            stack += [(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [(x, f"{path}[{i}]") for i, x in enumerate(v)]
    return None


def _field(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


_VALIDATOR: Any = None


def _schema_errors(data: dict[str, Any]) -> str | None:
    """The first schema violation as ``field: problem``, or None."""
    import jsonschema

    global _VALIDATOR
    if _VALIDATOR is None:
        from harness.record_schema import RUN_SCHEMA

        _VALIDATOR = jsonschema.Draft202012Validator(RUN_SCHEMA)
    validator = _VALIDATOR
    try:
        err = jsonschema.exceptions.best_match(validator.iter_errors(data))
    except RecursionError:
        return "(top level): nested too deeply"
    if err is None:
        return None
    parts = list(err.absolute_path)
    if err.validator == "required":
        missing = [r for r in err.validator_value if isinstance(err.instance, dict) and r not in err.instance]
        where = f"{_field(parts)} " if parts else ""
        if len(parts) == 2 and parts[0] == "tasks":
            where = f"task {parts[1]!r} "
        elif len(parts) >= 4 and parts[0] == "tasks":
            where = f"{_field(parts)} (task {parts[1]!r}) "
        return f"{where}lacks the field {missing[0]!r}" if missing else f"{where}{err.message}"
    if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "status":
        return f"task {parts[1]!r} has no valid status (one of {', '.join(STATUSES)})"
    msg = err.message if len(err.message) <= 160 else err.message[:157] + "..."
    return f"field {_field(parts)}: {msg}"


def load_run(path: str | Path) -> dict[str, Any]:
    """Read and validate a run record against :data:`harness.record_schema.RUN_SCHEMA`.

    Raises:
        ResultsError: the file is missing, unreadable, not UTF-8 JSON (binary, UTF-16),
            nested too deeply, holds NaN/Infinity, is not a torchdrills run record, is of
            a schema this version cannot read, or has a field of the wrong type or range
            (e.g. a median that is not > 0); the one-line message names the file and the field.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise ResultsError(f"{path}: {path.stat().st_size / 2**20:.0f} MiB is too big for a run record")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({_why(e)})") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) > 1 and (raw[0] == 0 or raw[1] == 0)):
        raise ResultsError(f"{path}: UTF-16 or binary, not a UTF-8 JSON run record")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not UTF-8 text (byte {e.start}); a binary file, not a run record") from None
    seen: list[str] = []

    def parse_constant(token: str) -> float:
        seen.append(token)
        return _NonFinite(float(token))

    try:
        data = json.loads(text, parse_constant=parse_constant)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise ResultsError(f"{path}: not a run record (JSON nested too deeply)") from None
    if not isinstance(data, dict) or data.get("kind") != RECORD_KIND:
        raise ResultsError(f'{path}: not a torchdrills run record (expected "kind": "{RECORD_KIND}")')
    if data.get("schema") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema {data.get('schema')!r} is not supported (this torchdrills reads schema {SCHEMA_VERSION})"
        )
    bad = _find_non_finite(data) if seen else None
    if bad is not None:
        raise ResultsError(f"{path}: field {bad} is NaN or Infinity (not JSON; a run record never holds one)")
    problem = _schema_errors(data)
    if problem is not None:
        raise ResultsError(f"{path}: {problem}")
    data["_path"] = str(path)
    return data


def find_runs(runs_dir: Path | None = None, machine: str | None = None) -> list[Path]:
    """Run files under ``runs_dir`` (for one machine if given), oldest first by run id."""
    root = runs_dir or default_runs_dir()
    if not root.is_dir():
        return []
    pattern = f"{machine}/*.json" if machine else "*/*.json"
    return sorted((p for p in root.glob(pattern) if p.is_file()), key=lambda p: p.name)


def newest_full_run(
    runs_dir: Path | None, machine: str, *, modes: tuple[str, ...] = ("run", "bench")
) -> tuple[Path | None, list[str]]:
    """The newest complete record of ``machine`` whose mode is one of ``modes``.

    Returns:
        (its path or None, one warning line per file skipped because it is not a valid record).
    """
    skipped: list[str] = []
    for p in reversed(find_runs(runs_dir, machine)):
        try:
            r = load_run(p)
        except ResultsError as e:
            skipped.append(f"skipped {e}")
            continue
        if r.get("status") == "complete" and r.get("mode") in modes:
            return p, skipped
    return None, skipped
