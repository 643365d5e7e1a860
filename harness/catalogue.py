"""The task catalogue (``harness/catalogue.toml``): every task the project means to have.

The catalogue ships inside the package, so coverage (``drills list``, ``drills list
--missing``, the report) works on a fresh clone with nothing beside it. Each row gives
the id, the catalogue number (``seed``), a title, what the check asserts, what the
benchmark measures and the capabilities it needs; ``[[area]]`` tables give the area
order that listings and the report follow (:data:`AREAS`).

A registered task must be a catalogue row (``tests/harness/test_catalogue.py``); a row
without a task file is *missing*, shown as such, never silently absent.

Example::

    >>> from harness.catalogue import get
    >>> get("fundamentals.manual_matmul").path
    'benches/fundamentals/manual_matmul.py'
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency for python_version < 3.11)
    import tomli as tomllib

#: The catalogue file (package data).
CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.toml"

_ID_RE = re.compile(r"^(?:[a-z_]+|m[1-6])\.[a-z0-9_]+$")
_SEED_RE = re.compile(r"^(?:\d{1,2}\.\d{2}|m[1-6])$")
_FIELDS = ("id", "seed", "title", "check", "bench", "needs", "parts_need")


class CatalogueError(Exception):
    """The catalogue file is malformed; the message names the row and the problem."""


@dataclasses.dataclass(frozen=True)
class Area:
    """One area of the catalogue.

    Attributes:
        name: the id prefix (``fundamentals``, ``m4``).
        title: what the area is about, in a few words.
    """

    name: str
    title: str


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalogue row.

    Attributes:
        id: ``area.slug``, the id the task file registers.
        seed: catalogue number, ``"1.01"`` .. ``"10.10"`` or a roadmap item ``"m1"`` .. ``"m6"``.
        title: what the task is.
        check: what its correctness check asserts, at the least.
        bench: what its benchmark measures.
        needs: capabilities without which the whole task is skipped.
        parts_need: capabilities that some parts need (those parts are skipped without them).
    """

    id: str
    seed: str
    title: str
    check: str
    bench: str
    needs: tuple[str, ...] = ()
    parts_need: tuple[str, ...] = ()

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def slug(self) -> str:
        return self.id.split(".", 1)[1]

    @property
    def path(self) -> str:
        """The task file, relative to the repository root: ``benches/<area>/<slug>.py``."""
        return f"benches/{self.area}/{self.slug}.py"

    def seed_key(self) -> tuple[int, int]:
        s = self.seed
        if s.startswith("m"):
            return (100 + int(s[1:]), 0)
        a, b = s.split(".")
        return (int(a), int(b))


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """Areas and rows of a catalogue file, both in file order."""

    path: Path
    areas: tuple[Area, ...]
    entries: tuple[Entry, ...]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def get(self, task_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == task_id), None)


def parse(text: str, path: Path = CATALOGUE_PATH) -> Catalogue:
    """A catalogue from TOML text.

    Raises:
        CatalogueError: invalid TOML, a row missing a field or with an extra one, a
            malformed id or seed, a repeated id, or an id whose area has no ``[[area]]``.
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{path}: not valid TOML: {e}") from None
    areas = tuple(Area(str(a["name"]), str(a.get("title", ""))) for a in data.get("area", []))
    names = [a.name for a in areas]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{path}: an [[area]] name repeats: {names}")
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, row in enumerate(data.get("task", [])):
        where = f"{path}: [[task]] #{i + 1} ({row.get('id', 'no id')})"
        missing = [f for f in _FIELDS if f not in row]
        extra = [f for f in row if f not in _FIELDS]
        if missing or extra:
            raise CatalogueError(f"{where}: missing fields {missing}, unknown fields {extra}; fields are {_FIELDS}")
        if not _ID_RE.match(row["id"]):
            raise CatalogueError(f"{where}: id is not of the form area.slug (lowercase, digits, _)")
        if not _SEED_RE.match(row["seed"]):
            raise CatalogueError(f"{where}: seed {row['seed']!r} is not like '1.01' or 'm4'")
        if row["id"] in seen:
            raise CatalogueError(f"{where}: id repeats an earlier row")
        entry = Entry(**{**row, "needs": tuple(row["needs"]), "parts_need": tuple(row["parts_need"])})
        if entry.area not in names:
            raise CatalogueError(f"{where}: area {entry.area!r} has no [[area]] table")
        seen.add(entry.id)
        entries.append(entry)
    return Catalogue(path=path, areas=areas, entries=tuple(entries))


@functools.lru_cache(maxsize=4)
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    """The catalogue of ``path`` (default: the one shipped in the package), read once.

    Raises:
        CatalogueError: the file is missing or malformed (see :func:`parse`).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogueError(f"cannot read the catalogue {path}: {e.strerror}; reinstall torchdrills") from None
    return parse(text, Path(path))


def catalogue_ids(path: Path | None = None) -> list[str]:
    """Catalogue ids in file order."""
    return load(path or CATALOGUE_PATH).ids


def entries() -> tuple[Entry, ...]:
    return load().entries


def get(task_id: str) -> Entry | None:
    """The row of ``task_id``, or None when the catalogue has none."""
    return load().get(task_id)


#: Areas in catalogue order, used for listing and report order.
AREAS: tuple[str, ...] = tuple(a.name for a in load().areas)


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Catalogue rows against the registered ids (and, for the report, the ids of one run).

    Attributes:
        path: the catalogue file read.
        catalogue: its ids in file order.
        registered: catalogue ids that are registered.
        ran: catalogue ids present in the run.
        missing: catalogue rows not registered, in catalogue order.
        extra: registered ids that the catalogue lacks (a rename, a typo or a task of your own).
    """

    path: Path
    catalogue: list[str]
    registered: list[str]
    ran: list[str]
    missing: list[Entry]
    extra: list[str]

    @property
    def summary(self) -> str:
        """``83 of 132 catalogue tasks registered``."""
        return f"{len(self.registered)} of {len(self.catalogue)} catalogue tasks registered"


def coverage(registered: Iterable[str], ran: Iterable[str] = (), cat: Catalogue | None = None) -> Coverage:
    """Coverage of the catalogue by ``registered`` ids and the ids of a run (``ran``)."""
    cat = cat or load()
    reg, ranset = list(registered), set(ran)
    regset, ids = set(reg), cat.ids
    idset = set(ids)
    return Coverage(
        path=cat.path,
        catalogue=ids,
        registered=[i for i in ids if i in regset],
        ran=[i for i in ids if i in ranset],
        missing=[e for e in cat.entries if e.id not in regset],
        extra=[i for i in reg if i not in idset],
    )


def missing_entries(
    registered: Iterable[str], *, areas: Sequence[str] | None = None, patterns: Sequence[str] | None = None
) -> list[Entry]:
    """Catalogue rows with no registered task, in catalogue order, filtered like ``drills list``.

    Args:
        registered: the registered ids.
        areas: keep rows of these areas only (None: all).
        patterns: keep rows whose id matches one of these ids or globs (None: all).

    Raises:
        CatalogueError: an area that is not a catalogue area (names the known ones).
    """
    unknown = [a for a in areas or () if a not in AREAS]
    if unknown:
        raise CatalogueError(f"unknown area {unknown[0]!r}; catalogue areas: {', '.join(AREAS)}")
    reg = set(registered)
    rows = [e for e in load().entries if e.id not in reg]
    if areas:
        rows = [e for e in rows if e.area in areas]
    if patterns:
        rows = [e for e in rows if any(fnmatch.fnmatchcase(e.id, p) for p in patterns)]
    return rows
