"""JSON Schema of a run record (``schema: 1``), checked before anything reads a results file.

:func:`harness.results.load_run` validates every file against :data:`RUN_SCHEMA` (with
``jsonschema``'s Draft 2020-12 validator), so the report, ``compare`` and the history
never meet a wrong-typed field: a file that does not fit is refused with one line naming
the file and the field.

How to extend it: records grow. Every object here allows additional properties, so a new
optional field (a measurement's ``n_preempted``, a task's ``mutants``) needs no change.
Add a field here only to constrain it (its type or range), and only when every record
the harness ever wrote already satisfies it; a new *required* field or a narrower type
is a schema change: bump :data:`harness.results.SCHEMA_VERSION` instead.
"""

from __future__ import annotations

from typing import Any

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": _STR}
_OBJ_LIST = {"type": "array", "items": {"type": "object"}}

#: One timed measurement: the row a task's ``ctx.measure`` records (median in ms, > 0).
#: Only the fields every reader relies on are constrained: validation cost grows with each
#: declared property (jsonschema is pure Python, ~0.1 ms per property and row), and a bench
#: record has thousands of rows; raw samples are checked as an array, not number by number.
MEASUREMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["impl", "median_ms"],
    "properties": {
        "impl": {"type": "string", "minLength": 1},
        "config": _STR,
        "dtype": _STR,
        "median_ms": {"type": "number", "exclusiveMinimum": 0},
        "iqr_ms": {"type": ["number", "null"], "minimum": 0},
        "samples_ms": {"type": "array"},
    },
}

#: One check: a named comparison or property.
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _STR,
        "passed": {"type": "boolean"},
        "n": {"type": "integer", "minimum": 0},
        "max_abs_err": _NUM_OR_NULL,
        "max_rel_err": _NUM_OR_NULL,
        "message": _STR,
    },
}

#: One task's entry under ``tasks``.
TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "id": _STR,
        "status": {"enum": ["pass", "fail", "skip", "error"]},
        "reason": _STR,
        "area": _STR,
        "seed": _STR,
        "title": _STR,
        "kind": _STR,
        "device": _STR,
        "mode": _STR,
        "size": {"type": ["string", "null"]},
        "dtype": _STR,
        "duration_s": {"type": "number", "minimum": 0},
        "checks": {"type": "array", "items": CHECK_SCHEMA},
        "measurements": {"type": "array", "items": MEASUREMENT_SCHEMA},
        "metrics": {"type": "object", "additionalProperties": _NUM_OR_NULL},
        "curves": _OBJ_LIST,
        "tables": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": _STR, "rows": _OBJ_LIST}},
        },
        "skipped_parts": _OBJ_LIST,
        "notes": _STR_LIST,
        "warnings": _STR_LIST,
        "error": _STR,
        "stdout": _STR,
        "stderr": _STR,
    },
}

#: A whole run record file.
RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "torchdrills run record",
    "type": "object",
    "required": ["schema", "kind", "run_id", "fingerprint", "tasks"],
    "properties": {
        "schema": {"const": 1},
        "kind": {"const": "torchdrills.run"},
        "run_id": {"type": "string", "minLength": 1},
        "started_utc": {"type": ["string", "null"]},
        "finished_utc": {"type": ["string", "null"]},
        "status": {"enum": ["running", "complete", "interrupted"]},
        "mode": _STR,
        "argv": _STR_LIST,
        "device": {"type": ["string", "null"]},
        "size": {"type": ["string", "null"]},
        "fingerprint": {
            "type": "object",
            "properties": {
                "machine_id": _STR,
                "gpus": _OBJ_LIST,
                "git": {"type": ["object", "null"]},
                "cpu_cores": {"type": ["integer", "null"]},
            },
        },
        "peak": {"type": ["object", "null"]},
        "capabilities": {"type": ["object", "null"]},
        "warnings": _STR_LIST,
        "tasks": {"type": "object", "additionalProperties": TASK_SCHEMA},
    },
}
