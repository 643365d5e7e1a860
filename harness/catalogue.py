"""The task catalogue (TASKS.md): which ids exist, for coverage lines and tests.

TASKS.md lives in the project's shared folder beside the checkout. Rows are parsed the
way the project's before-stop hook parses them: a table row starting ``| 1.01
area.slug`` (practice tasks) or ``| m1.slug`` (roadmap items).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from harness.fingerprint import REPO_ROOT

ROW = re.compile(r"^\| (m[1-6]\.[a-z0-9_]+|[0-9]+\.[0-9]+ [a-z_]+\.[a-z0-9_]+)")


def find_tasks_md() -> Path | None:
    """``$DRILLS_TASKS_MD``, else ``../shared/TASKS.md`` beside the repo, else ``TASKS.md`` in it."""
    candidates = [os.environ.get("DRILLS_TASKS_MD"), REPO_ROOT.parent / "shared" / "TASKS.md", REPO_ROOT / "TASKS.md"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def catalogue_ids(path: Path | None = None) -> list[str]:
    """Catalogue ids in file order; [] when no TASKS.md is found."""
    path = path or find_tasks_md()
    if path is None:
        return []
    return [m.group(1).split()[-1] for line in Path(path).read_text().splitlines() if (m := ROW.match(line))]
