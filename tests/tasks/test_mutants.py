"""Every declared mutant of every task is caught by its check (``harness.mutants``).

This is the test behind the report's "check strength": a task's wrong implementations live
next to its right ones (``mutants = (...)`` in the task file) and each one must make the
check raise CheckFailed (with its ``match`` text), never pass and never merely crash.
"""

import pytest

from harness import REGISTRY, capabilities
from harness.mutants import run_mutant

CASES = [(t, m) for t in REGISTRY.all() for m in t.mutants]


@pytest.mark.parametrize(("task_cls", "mutant"), CASES, ids=[f"{t.id}-{m.name}" for t, m in CASES])
def test_mutant_is_caught(task_cls, mutant):
    missing = capabilities.missing(list(task_cls.requires))
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    verdict = run_mutant(task_cls, mutant)
    assert verdict["caught"], f"{task_cls.id} mutant {mutant.name} ({mutant.what}) survived: {verdict['how']}"
