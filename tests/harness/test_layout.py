"""The shape every task file keeps: short enough to read in one sitting, on the contract, standalone.

* no task file over :data:`MAX_LINES` lines, and half of them at most :data:`MEDIAN_LINES`
  (about 150 with lesson and mutants: DESIGN.md, Style; issue 11's target);
* no task file imports another task file (shared code lives in models/, kernels/, harness/);
* every registered task states at least one claim and declares at least two mutants;
* nothing the project runs reads ``../shared`` (the first drafts live outside the repo).
"""

import ast
import re
import statistics
from pathlib import Path

import pytest

from harness import REGISTRY

REPO = Path(__file__).resolve().parents[2]
TASK_FILES = sorted(p for p in (REPO / "benches").glob("*/*.py"))
#: A task file over this many lines fails: move shared code out (kernels/, models/, harness/).
MAX_LINES = 250
#: The median task file may not grow past this: the style target (DESIGN.md, Style).
MEDIAN_LINES = 150


@pytest.mark.parametrize("path", TASK_FILES, ids=[f"{p.parent.name}/{p.name}" for p in TASK_FILES])
def test_task_file_is_short_and_imports_no_other_task(path):
    text = path.read_text()
    n = len(text.splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} lines (> {MAX_LINES}): move shared code out"
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            bad = [m for m in names if m and (m.startswith("drills_tasks") or m.startswith("benches."))]
            assert not bad, f"{path.relative_to(REPO)} imports another task file: {bad}"
    assert "importlib" not in text or "spec_from_file_location" not in text, (
        f"{path.relative_to(REPO)} loads a file by path: import shared code from models/, kernels/ or harness/"
    )


def test_median_task_file_reads_in_one_sitting():
    counts = sorted(len(p.read_text().splitlines()) for p in TASK_FILES)
    median = statistics.median(counts)
    longest = sorted(TASK_FILES, key=lambda p: -len(p.read_text().splitlines()))[:5]
    assert median <= MEDIAN_LINES, f"median task file has {median} lines (> {MEDIAN_LINES}); the longest: " + ", ".join(
        f"{p.parent.name}/{p.name}" for p in longest
    )


TASKS = REGISTRY.all()


@pytest.mark.parametrize("cls", TASKS, ids=[t.id for t in TASKS])
def test_task_states_claims_and_declares_mutants(cls):
    assert len(cls.claims) >= 1, f"{cls.id}: no claim; state the lesson's numbers as claims (harness.claims)"
    assert len(cls.mutants) >= 2, f"{cls.id}: {len(cls.mutants)} mutants declared; a check needs wrong versions"


def test_nothing_reads_the_shared_folder():
    pattern = re.compile(r"""["'](?:\.\./)+shared|/work/shared""")
    offenders = []
    for sub in ("harness", "kernels", "models", "benches"):
        for p in (REPO / sub).rglob("*.py"):
            if pattern.search(p.read_text()):
                offenders.append(str(p.relative_to(REPO)))
    assert not offenders, f"these files read ../shared (the project must stand alone): {offenders}"
