"""The task registry: explicit ids from TASKS.md, loaded from ``benches/<area>/<slug>.py``.

A task file registers its class with :func:`task`, giving the TASKS.md id
explicitly (never inferred from the path)::

    @task("fundamentals.manual_matmul", seed="1.01", title="matrix multiplication by hand")
    class ManualMatmul(Operator):
        ...

Why task files are loaded by path: the area folders under ``benches/`` have no
``__init__.py``. asv imports every module of its benchmark_dir from the *working
tree*, while it must time the task code *installed at each commit*. So the registry
finds task files next to the installed ``harness`` package (site-packages in an asv
environment, the repository in an editable install) and imports each under
``drills_tasks.<area>.<slug>``. A meta-path finder makes those names importable in
child processes too (spawned workers, DDP ranks, pickled functions).

Extra task folders (your own drills, or tests' planted tasks) come from the
``DRILLS_TASKS_DIR`` environment variable (``os.pathsep``-separated), each laid out
as ``<dir>/<area>/<slug>.py``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from harness import catalogue
from harness.contract import RegistryError

if TYPE_CHECKING:
    from harness.task import Task

#: Folder of the task files that ship with the package.
BUILTIN_TASKS_DIR = Path(__file__).resolve().parent.parent / "benches"
TASKS_DIR_ENV = "DRILLS_TASKS_DIR"
_MODULE_PREFIX = "drills_tasks"

ID_RE = re.compile(r"^(?:[a-z_]+|m[1-6])\.[a-z0-9_]+$")
SEED_RE = re.compile(r"^(?:\d{1,2}\.\d{2}|m[1-6])$")

#: Areas in catalogue order (harness/catalogue.toml), used for listing and report order.
AREAS: tuple[str, ...] = catalogue.AREAS


def task_dirs() -> list[Path]:
    """The built-in task folder plus any from ``DRILLS_TASKS_DIR``."""
    dirs = [BUILTIN_TASKS_DIR]
    for part in os.environ.get(TASKS_DIR_ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser().resolve())
    return dirs


def _task_files() -> dict[str, Path]:
    """Map module name -> file for every task file in :func:`task_dirs`."""
    found: dict[str, Path] = {}
    for root_i, root in enumerate(task_dirs()):
        if not root.is_dir():
            continue
        for area_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            for f in sorted(area_dir.glob("*.py")):
                if f.name.startswith(("_", "test_")):
                    continue
                # Extra roots get their own prefix so a planted task never shadows a built-in.
                pkg = _MODULE_PREFIX if root_i == 0 else f"{_MODULE_PREFIX}_x{root_i}"
                found[f"{pkg}.{area_dir.name}.{f.stem}"] = f
    return found


class _TaskFinder(importlib.abc.MetaPathFinder):
    """Makes ``drills_tasks.<area>.<slug>`` importable from the task files."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D401 - importlib API
        if not fullname.startswith(_MODULE_PREFIX):
            return None
        parts = fullname.split(".")
        if len(parts) < 3:  # the package levels: namespace-like empty modules
            return importlib.machinery.ModuleSpec(fullname, None, is_package=True)
        f = _task_files().get(fullname)
        if f is None:
            return None
        return importlib.util.spec_from_file_location(fullname, f)


def install_finder() -> None:
    if not any(isinstance(f, _TaskFinder) for f in sys.meta_path):
        sys.meta_path.append(_TaskFinder())


class Registry:
    """Tasks by id, plus the files that failed to import (with their tracebacks)."""

    def __init__(self) -> None:
        self._tasks: dict[str, type[Task]] = {}
        self.load_errors: dict[str, str] = {}
        self._loaded = False

    # -- registration -------------------------------------------------------------
    def add(self, cls: type[Task]) -> type[Task]:
        """Register ``cls`` under ``cls.id``.

        Raises:
            RegistryError: duplicate id (two files claim one TASKS.md row).
        """
        other = self._tasks.get(cls.id)
        if (
            other is not None
            and other is not cls
            and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__)
        ):
            raise RegistryError(
                f"task id {cls.id!r} registered twice: {other.__module__}.{other.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}; ids must be unique"
            )
        self._tasks[cls.id] = cls
        return cls

    def load(self) -> Registry:
        """Import every task file once; import failures are kept in :attr:`load_errors`."""
        if self._loaded:
            return self
        self._loaded = True
        install_finder()
        for modname, path in _task_files().items():
            if modname in sys.modules:
                continue
            try:
                importlib.import_module(modname)
            except Exception:  # a broken task file must not take down the others
                self.load_errors[str(path)] = traceback.format_exc(limit=-6)
        return self

    # -- lookup -------------------------------------------------------------------
    def all(self) -> list[type[Task]]:
        """Tasks in catalogue order: area order of TASKS.md, then the seed number."""
        self.load()

        def key(c: type[Task]):
            area_i = AREAS.index(c.area) if c.area in AREAS else len(AREAS)
            return (area_i, c.seed_sort_key(), c.id)

        return sorted(self._tasks.values(), key=key)

    def get(self, task_id: str) -> type[Task]:
        """The task registered as ``task_id``.

        Raises:
            RegistryError: unknown id, with the closest matches.
        """
        self.load()
        try:
            return self._tasks[task_id]
        except KeyError:
            close = difflib.get_close_matches(task_id, list(self._tasks), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `drills list`"
            raise RegistryError(f"unknown task {task_id!r}{hint}") from None

    def select(self, *, tasks: list[str] | None = None, areas: list[str] | None = None) -> list[type[Task]]:
        """Tasks matching any ``tasks`` pattern (id or glob) and any of ``areas``.

        Raises:
            RegistryError: a pattern or area that matches nothing, with close matches.
        """
        everything = self.all()
        chosen = everything
        if areas:
            known = sorted({c.area for c in everything} | set(AREAS))
            for a in areas:
                if a not in known:
                    close = difflib.get_close_matches(a, known, n=3, cutoff=0.4)
                    hint = f"; did you mean {', '.join(close)}?" if close else f"; areas: {', '.join(known)}"
                    raise RegistryError(f"unknown area {a!r}{hint}")
            chosen = [c for c in chosen if c.area in areas]
        if tasks:
            picked: list[type[Task]] = []
            for pat in tasks:
                if any(ch in pat for ch in "*?["):
                    hits = [c for c in chosen if fnmatch.fnmatchcase(c.id, pat)]
                    if not hits:
                        raise RegistryError(f"no task matches {pat!r}; see `drills list`")
                else:
                    hits = [self.get(pat)]
                    if areas and hits[0] not in chosen:
                        raise RegistryError(f"task {pat!r} is not in area(s) {', '.join(areas)}")
                picked += [h for h in hits if h not in picked]
            chosen = [c for c in chosen if c in picked]
        return chosen

    def __contains__(self, task_id: str) -> bool:
        self.load()
        return task_id in self._tasks

    def __len__(self) -> int:
        self.load()
        return len(self._tasks)


#: The process-wide registry that :func:`task` registers into.
REGISTRY = Registry()

# Task modules must be importable by name wherever harness.registry is (spawned ranks,
# unpickling), before and without a full load().
install_finder()


def task(task_id: str, *, seed: str, title: str, registry: Registry | None = None):
    """Class decorator: register a task under its TASKS.md id.

    Args:
        task_id: ``area.slug`` exactly as in TASKS.md (e.g. ``fundamentals.manual_matmul``).
        seed: the TASKS.md number (``"1.01"``) or the roadmap item (``"m4"``).
        title: the TASKS.md task text.

    Raises:
        RegistryError: malformed id or seed, or an id registered twice.
    """
    if not ID_RE.match(task_id):
        raise RegistryError(
            f"task id {task_id!r} is not of the form area.slug (area: lowercase letters and _, or m1-m6; "
            "slug: lowercase letters, digits and _)"
        )
    if not SEED_RE.match(seed):
        raise RegistryError(f"seed {seed!r} of {task_id} is not a TASKS.md number like '1.01' or a roadmap item 'm4'")

    def deco(cls):
        cls.id = task_id
        cls.seed = seed
        cls.title = title
        cls.area = task_id.split(".", 1)[0]
        cls.validate()
        return (registry if registry is not None else REGISTRY).add(cls)

    return deco
