"""The catalogue (``harness/catalogue.toml``) as the report sees it: rows, registered, ran."""

from __future__ import annotations

import dataclasses

from harness.catalogue import Coverage as _Coverage
from harness.catalogue import coverage as _coverage


@dataclasses.dataclass(frozen=True)
class Coverage(_Coverage):
    """:class:`harness.catalogue.Coverage` plus the task files that failed to import.

    Attributes:
        load_errors: task file path -> traceback of its import failure.
    """

    load_errors: dict[str, str] = dataclasses.field(default_factory=dict)


def coverage(run_ids: list[str]) -> Coverage:
    """Coverage of the catalogue by the registry and by ``run_ids`` (the ids of one run)."""
    from harness.registry import REGISTRY

    base = _coverage([c.id for c in REGISTRY.all()], run_ids)
    return Coverage(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, load_errors=dict(REGISTRY.load_errors)
    )
