"""The shape every task file keeps: short enough to read in one sitting, on the contract, standalone.

* no task file over :data:`MAX_LINES` lines, and half of them at most :data:`MEDIAN_LINES`
  (about 150 with lesson and mutants: DESIGN.md, Style), counted as ruff formats the file
  with every ``# fmt: skip`` removed, so hand-wrapping a statement does not shorten a file;
* no task file imports another task file (shared code lives in models/, kernels/, harness/);
* every registered task states at least one claim and declares at least two mutants;
* nothing the project runs reads ``../shared`` (the first drafts live outside the repo).
"""

import ast
import importlib.util
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REGISTRY

REPO = Path(__file__).resolve().parents[2]
TASK_FILES = sorted(p for p in (REPO / "benches").glob("*/*.py"))
#: A task file over this many (formatted) lines fails: move shared code out (kernels/, models/, harness/).
MAX_LINES = 250
#: The median task file may not grow past this many (formatted) lines: the style target (DESIGN.md, Style).
MEDIAN_LINES = 150
_FMT_SKIP = re.compile(r"\s*# fmt: skip$", re.MULTILINE)


@pytest.fixture(scope="module")
def formatted_lines(tmp_path_factory) -> dict[Path, int]:
    """Lines of each task file as ``ruff format`` writes it with every ``# fmt: skip`` removed.

    One ruff call over copies in a temporary folder, with the project's ruff settings.
    """
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("needs ruff (the [cpu] extra installs it) to count formatted lines")
    out = tmp_path_factory.mktemp("formatted")
    copies = {}
    for p in TASK_FILES:
        dst = out / p.parent.name / p.name
        dst.parent.mkdir(exist_ok=True)
        dst.write_text(_FMT_SKIP.sub("", p.read_text()))
        copies[p] = dst
    cmd = [sys.executable, "-m", "ruff", "format", "-q", "--config", str(REPO / "pyproject.toml"), str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return {p: len(dst.read_text().splitlines()) for p, dst in copies.items()}


@pytest.mark.parametrize("path", TASK_FILES, ids=[f"{p.parent.name}/{p.name}" for p in TASK_FILES])
def test_task_file_is_short_and_imports_no_other_task(path, formatted_lines):
    text = path.read_text()
    n = formatted_lines[path]
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} formatted lines (> {MAX_LINES}): move shared code out"
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            bad = [m for m in names if m and (m.startswith("drills_tasks") or m.startswith("benches."))]
            assert not bad, f"{path.relative_to(REPO)} imports another task file: {bad}"
    assert "importlib" not in text or "spec_from_file_location" not in text, (
        f"{path.relative_to(REPO)} loads a file by path: import shared code from models/, kernels/ or harness/"
    )


def test_median_task_file_reads_in_one_sitting(formatted_lines):
    median = statistics.median(formatted_lines.values())
    longest = sorted(TASK_FILES, key=lambda p: -formatted_lines[p])[:5]
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
