"""The TASKS.md catalogue as the report sees it: which ids exist, which are registered.

Rows are read the way ``shared/hooks/before-stop`` reads them: a line starting
``| 1.01 area.slug`` (numbered task) or ``| m1.slug`` (roadmap item); the id is the
last word of that match.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.catalogue import candidates, find_tasks_md, parse  # noqa: F401 - re-exported


@dataclasses.dataclass
class Coverage:
    """Catalogue ids against the registry and one run.

    Attributes:
        path: the TASKS.md read, or None when none was found (see :func:`candidates`).
        catalogue: its ids in file order.
        registered: catalogue ids the registry knows.
        ran: catalogue ids present in the run.
        missing: catalogue ids not registered.
        extra: registered ids that TASKS.md lacks (a rename or a typo).
        load_errors: task files that failed to import (path -> traceback).
    """

    path: Path | None
    catalogue: list[str]
    registered: list[str]
    ran: list[str]
    missing: list[str]
    extra: list[str]
    load_errors: dict[str, str]


def coverage(run_ids: list[str]) -> Coverage:
    """Coverage of the catalogue by the registry and by ``run_ids`` (ids in the run)."""
    from harness.registry import REGISTRY

    reg = [c.id for c in REGISTRY.all()]
    path = find_tasks_md()
    cat = parse(path.read_text(errors="replace")) if path else []
    regset, ranset = set(reg), set(run_ids)
    return Coverage(
        path=path,
        catalogue=cat,
        registered=[i for i in cat if i in regset],
        ran=[i for i in cat if i in ranset],
        missing=[i for i in cat if i not in regset],
        extra=[i for i in reg if path and i not in set(cat)],
        load_errors=dict(REGISTRY.load_errors),
    )
