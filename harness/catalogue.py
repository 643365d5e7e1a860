"""The task catalogue (TASKS.md): which ids exist, for coverage lines and tests.

TASKS.md lives in the project's shared folder beside the checkout. Rows are read the
way the project's before-stop hook reads them: a table row starting ``| 1.01
area.slug`` (practice task) or ``| m1.slug`` (roadmap item); the id is the last word
of that match.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.fingerprint import REPO_ROOT

ROW_RE = re.compile(r"^\| (m[1-6]\.[a-z0-9_]+|[0-9]+\.[0-9]+ [a-z_]+\.[a-z0-9_]+)")
TASKS_MD_ENV = "DRILLS_TASKS_MD"


def candidates() -> list[Path]:
    """Where TASKS.md is looked for, in order: ``$DRILLS_TASKS_MD``, ``<repo>/../shared``, ``<repo>``."""
    out = []
    env = os.environ.get(TASKS_MD_ENV)
    if env:
        out.append(Path(env).expanduser())
    out += [REPO_ROOT.parent / "shared" / "TASKS.md", REPO_ROOT / "TASKS.md"]
    return out


def find_tasks_md() -> Path | None:
    for p in candidates():
        if p.is_file():
            return p
    return None


def parse(text: str) -> list[str]:
    """Catalogue ids in file order, each once."""
    ids: dict[str, None] = {}
    for line in text.splitlines():
        m = ROW_RE.match(line)
        if m:
            ids[m.group(1).split()[-1]] = None
    return list(ids)


def catalogue_ids(path: Path | None = None) -> list[str]:
    """Catalogue ids of ``path`` (default: :func:`find_tasks_md`); [] when none is found."""
    path = path or find_tasks_md()
    return parse(Path(path).read_text(errors="replace")) if path else []
