"""8.02 ddp: DDP and all-reduce gradients equal single-process ones (its mutants, summing instead of
averaging: test_mutants.py). The rank functions, wrong ones included, live at module level in the
task file: the ranks are fresh interpreters that import them by reference.
"""

import pickle

import pytest

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("advanced.ddp")
module = __import__(Task.__module__, fromlist=["grads_rank"])

pytestmark = pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")


def test_check_passes_with_two_gloo_ranks():
    rec = run_check(Task)
    assert set(rec.checks) == {
        "each rank's loss is that of its own shard",
        "DDP broadcasts rank 0's parameters",
        "DDP gradients = single-process gradients",
        "all_reduce mean gradients = single-process gradients",
    }
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["DDP gradients = single-process gradients"]["n"] == 2 * 4  # ranks x parameters


def test_rank_functions_pickle_by_reference():
    assert Task.__module__ == "drills_tasks.advanced.ddp"
    for fn in (module.grads_rank, module.step_times_rank, module.allreduce_mean, module.allreduce_sum_only):
        blob = pickle.dumps(fn)
        assert fn.__qualname__.encode() in blob and len(blob) < 200  # a reference, not code
        assert pickle.loads(blob) is fn
