"""Registry contract: explicit unique ids, one baseline per operator, catalogue coverage."""

from pathlib import Path

import pytest
import torch

from harness import Comparison, Operator, impl
from harness.catalogue import catalogue_ids
from harness.registry import REGISTRY, Registry, RegistryError, task
from harness.task import SIZE_PRESETS


def test_every_registered_task_is_well_formed():
    tasks = REGISTRY.all()
    assert tasks, "no task registered"
    assert not REGISTRY.load_errors, REGISTRY.load_errors
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids))
    for t in tasks:
        assert t.id.split(".")[0] == t.area
        assert t.lesson()
        assert "tiny" in t.sizes and set(t.sizes) <= set(SIZE_PRESETS)
        if t.kind == "operator":
            assert sum(s.baseline for s in t.implementations()) == 1, t.id


def test_registered_ids_are_catalogue_ids_and_coverage_is_known():
    ids = catalogue_ids()
    if not ids:
        pytest.skip("needs TASKS.md (shared/ beside the checkout, or DRILLS_TASKS_MD)")
    assert len(ids) == len(set(ids)) >= 130
    registered = {t.id for t in REGISTRY.all()}
    unknown = registered - set(ids)
    assert not unknown, f"registered ids not in TASKS.md: {sorted(unknown)}"
    missing = sorted(set(ids) - registered)
    print(f"catalogue coverage: {len(registered)} of {len(ids)}; missing {len(missing)}")


def _op(**attrs):
    base = {
        "__doc__": "doc",
        "sizes": {"tiny": None},
        "inputs": lambda self, c, d, t, s: (torch.ones(2),),
        "reference": lambda self, x: x,
    }
    return type("T", (Operator,), {**base, **attrs})


def test_operator_needs_exactly_one_baseline():
    reg = Registry()
    with pytest.raises(RegistryError, match="exactly one baseline"):
        task("zz.none", seed="1.01", title="t", registry=reg)(_op(a=impl(lambda self, x: lambda: x)))
    with pytest.raises(RegistryError, match="found 2"):
        task("zz.two", seed="1.01", title="t", registry=reg)(
            _op(
                a=impl(lambda self, x: lambda: x, baseline=True, name="a"),
                b=impl(lambda self, x: lambda: x, baseline=True, name="b"),
            )
        )


def test_duplicate_ids_and_bad_ids_are_rejected():
    reg = Registry()
    good = _op(a=impl(lambda self, x: lambda: x, baseline=True, name="a"))
    task("zz.dup", seed="1.01", title="t", registry=reg)(good)
    other = _op(b=impl(lambda self, x: lambda: x, baseline=True, name="b"))
    other.__qualname__ = "Other"
    with pytest.raises(RegistryError, match="registered twice"):
        task("zz.dup", seed="1.01", title="t", registry=reg)(other)
    with pytest.raises(RegistryError, match="area.slug"):
        task("NoDot", seed="1.01", title="t", registry=reg)
    with pytest.raises(RegistryError, match="TASKS.md number"):
        task("zz.x", seed="one", title="t", registry=reg)


def test_missing_docstring_tiny_size_or_unknown_capability_is_rejected():
    reg = Registry()
    with pytest.raises(RegistryError, match="tiny"):
        task("zz.a", seed="1.01", title="t", registry=reg)(type("A", (Comparison,), {"__doc__": "d", "sizes": {}}))
    with pytest.raises(RegistryError, match="docstring"):
        task("zz.b", seed="1.01", title="t", registry=reg)(type("B", (Comparison,), {"sizes": {"tiny": None}}))
    with pytest.raises(ValueError, match="unknown capability"):
        task("zz.c", seed="1.01", title="t", registry=reg)(
            type("C", (Comparison,), {"__doc__": "d", "sizes": {"tiny": None}, "requires": ("tpu",)})
        )


def test_select_by_glob_and_area():
    tasks = REGISTRY.select(tasks=["fundamentals.*"])
    assert tasks and all(t.area == "fundamentals" for t in tasks)
    assert REGISTRY.select(areas=["fundamentals"]) == tasks
    with pytest.raises(RegistryError, match="did you mean"):
        REGISTRY.get("fundamentals.manual_matmull")


def test_task_modules_are_importable_by_name_for_pickling():
    import importlib
    import pickle

    cls = REGISTRY.get("fundamentals.manual_matmul")
    mod = importlib.import_module(cls.__module__)
    assert mod.__name__.startswith("drills_tasks.fundamentals")
    assert pickle.loads(pickle.dumps(cls)) is cls


def test_uses_gpu_is_derived_from_capabilities():
    plain = _op(a=impl(lambda self, x: lambda: x, baseline=True, name="a"))
    assert not plain.uses_gpu()
    gpu_timed = _op(
        a=impl(lambda self, x: lambda: x, baseline=True, name="a"),
        b=impl(lambda self, x: lambda: x, name="b", requires=("triton",), bench_requires=("cuda",)),
    )
    assert gpu_timed.uses_gpu()
    flagged = _op(a=impl(lambda self, x: lambda: x, baseline=True, name="a"), gpu_check=True)
    assert flagged.uses_gpu()


def test_every_task_has_a_test_file_and_declared_mutants():
    """Each registered task has tests/tasks/test_<area>_<slug>.py, and its check's failing side is
    shown by its declared mutants (tests/tasks/test_mutants.py runs every one)."""
    root = Path(__file__).resolve().parent.parent / "tasks"
    missing = [t.id for t in REGISTRY.all() if not (root / f"test_{t.id.replace('.', '_')}.py").exists()]
    toothless = [t.id for t in REGISTRY.all() if not t.mutants]
    assert not missing, f"tasks without a test file: {missing}"
    assert not toothless, f"tasks whose check is never shown failing (no mutants): {toothless}"
