"""The catalogue (harness/catalogue.toml): 132 rows, every registered task one of them, coverage on a bare clone."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import catalogue
from harness.capabilities import DESCRIPTIONS
from harness.catalogue import CatalogueError, coverage, load, missing_entries, parse
from harness.registry import AREAS, BUILTIN_TASKS_DIR, REGISTRY

REPO = Path(__file__).resolve().parents[2]


def test_catalogue_has_132_unique_rows_in_area_order():
    cat = load()
    ids = cat.ids
    assert len(ids) == len(set(ids)) == 132
    assert AREAS == tuple(a.name for a in cat.areas) and len(AREAS) == 16  # the registry's order is the file's
    numbered = [e.seed for e in cat.entries if not e.seed.startswith("m")]
    assert len(numbered) == len(set(numbered)) == 100  # 1.01 .. 10.10, each once
    order = [AREAS.index(e.area) for e in cat.entries]
    assert order == sorted(order), "rows are grouped by area in area order"
    for e in cat.entries:
        assert e.title and e.check and e.bench, e.id
        assert e.seed.startswith("m") == e.area.startswith("m"), e.id
        if not e.seed.startswith("m"):
            assert int(e.seed.split(".")[0]) == AREAS.index(e.area) + 1, e.id  # 7.xx is the seventh area
        unknown = (set(e.needs) | set(e.parts_need)) - set(DESCRIPTIONS)
        assert not unknown, f"{e.id}: unknown capabilities {unknown} (harness/capabilities.py)"


def test_every_registered_task_is_a_catalogue_row_with_its_seed_and_title():
    tasks = REGISTRY.all()
    assert tasks and not REGISTRY.load_errors, REGISTRY.load_errors
    for cls in tasks:
        row = catalogue.get(cls.id)
        assert row is not None, f"{cls.id} is registered but has no row in harness/catalogue.toml"
        assert cls.seed == row.seed, f"{cls.id}: registered with seed {cls.seed}, catalogue says {row.seed}"
        assert cls.title == row.title, f"{cls.id}: registered as {cls.title!r}, catalogue title {row.title!r}"


def test_every_task_file_is_benches_area_slug():
    for cls in REGISTRY.all():
        f = Path(inspect.getfile(cls)).resolve()
        assert f == (BUILTIN_TASKS_DIR / cls.area / f"{cls.id.split('.', 1)[1]}.py").resolve(), cls.id
        assert f.relative_to(BUILTIN_TASKS_DIR.parent).as_posix() == catalogue.get(cls.id).path
    ids = set(load().ids)
    for f in BUILTIN_TASKS_DIR.glob("*/*.py"):
        if not f.name.startswith(("_", "test_")):
            assert f"{f.parent.name}.{f.stem}" in ids, f"{f} is no catalogue row (benches/<area>/<slug>.py)"


def test_coverage_and_missing_rows():
    registered = [c.id for c in REGISTRY.all()]
    cov = coverage(registered, ran=["fundamentals.manual_matmul", "zz.planted"])
    assert cov.summary == f"{len(registered)} of 132 catalogue tasks registered"
    assert cov.ran == ["fundamentals.manual_matmul"] and cov.extra == []
    assert [e.id for e in cov.missing] == [i for i in load().ids if i not in set(registered)]
    assert coverage(["zz.planted"]).extra == ["zz.planted"]
    gans = missing_entries([], areas=["gans"])
    assert [e.seed for e in gans] == [f"7.{i:02d}" for i in range(1, 11)]
    assert [e.id for e in missing_entries([], patterns=["m6.seed*"])] == ["m6.seeded_runs"]
    with pytest.raises(CatalogueError, match="unknown area 'nope'"):
        missing_entries([], areas=["nope"])


ROW = 'id = "a.x"\nseed = "1.01"\ntitle = "t"\ncheck = "c"\nbench = "b"\nneeds = []\nparts_need = []\n'


@pytest.mark.parametrize(
    "text, match",
    [
        ('[[area]]\nname = "a"\n[[task]]\n' + ROW + "[[task]]\n" + ROW, "id repeats"),
        ('[[area]]\nname = "b"\n[[task]]\n' + ROW, "area 'a' has no"),
        ('[[area]]\nname = "a"\n[[task]]\n' + ROW.replace('bench = "b"\n', ""), r"missing fields \['bench'\]"),
        ('[[area]]\nname = "a"\n[[task]]\n' + ROW.replace('"1.01"', '"1.1"'), "seed '1.1'"),
        ('[[area]]\nname = "a"\n[[task]]\n' + ROW.replace('"a.x"', '"A.x"'), "not of the form"),
        ("[[area]\n", "not valid TOML"),
    ],
)
def test_malformed_catalogue_is_refused_naming_the_row(text, match):
    with pytest.raises(CatalogueError, match=match):
        parse(text)


def test_a_bare_clone_without_shared_shows_coverage(tmp_path):
    """Only harness/ copied, nothing beside it: the report and `drills list --missing` still know all 132 rows."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "harness", clone / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (clone.parent / "shared").exists()
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1", "DRILLS_RESULTS_DIR": str(tmp_path / "r")}
    env.pop("DRILLS_TASKS_DIR", None)
    code = (
        "import harness, sys; assert harness.__file__.startswith(sys.argv[1]), harness.__file__\n"
        "from harness.cli import main\n"
        "assert main(['list', '--missing', '--area', 'research']) == 0\n"
        "from harness.report import render_report\n"
        "print(render_report([], out=sys.argv[1] + '/index.html', runs_dir=sys.argv[1] + '/runs').read_text())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(clone)],
        cwd=clone,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    assert "<b>0 of 132</b> catalogue tasks registered" in page  # no task files in this clone
    assert "132 catalogue tasks not registered yet" in page and "7.01 gans.vanilla_gan" in page
    # drills list --missing, printed before the page
    assert "research.gpt2_repro" in page and "reproduce GPT-2" in page
    assert "0 of 132 catalogue tasks registered\n" in page
