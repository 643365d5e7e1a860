"""8.02 ddp: DDP and all-reduce gradients equal single-process ones; summing instead of averaging is caught.

The planted sync functions live at module level here: the ranks are fresh interpreters
that import them by reference (this folder travels in their PYTHONPATH).
"""

import pickle

import pytest
import torch.distributed as dist

from harness import REGISTRY, capabilities
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("advanced.ddp")
module = __import__(Task.__module__, fromlist=["grads_rank"])

pytestmark = pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")


def allreduce_sum_only(model):
    """Forgets to divide by the world size: W times the gradient."""
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def sum_hook(state, bucket):
    """A DDP comm hook that sums the bucket across ranks and never divides."""
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


class ManualSums(Task):
    grad_sync = staticmethod(allreduce_sum_only)


class DDPHookSums(Task):
    comm_hook = staticmethod(sum_hook)


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


def test_manual_all_reduce_that_sums_is_caught():
    expect_check_fails(ManualSums, match="all_reduce mean gradients")


def test_ddp_comm_hook_that_sums_is_caught():
    expect_check_fails(DDPHookSums, match="DDP gradients")


def test_rank_functions_pickle_by_reference():
    assert Task.__module__ == "drills_tasks.advanced.ddp"
    for fn in (module.grads_rank, module.step_times_rank, module.allreduce_mean, allreduce_sum_only):
        blob = pickle.dumps(fn)
        assert fn.__qualname__.encode() in blob and len(blob) < 200  # a reference, not code
        assert pickle.loads(blob) is fn
