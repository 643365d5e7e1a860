"""m5.bucket_tuning: every bucket cap gives the single-process gradients and DDP's buckets follow
the parameter sizes (its mutants, wrong bucket formulas among them: test_mutants.py); worked
examples of the bucket plan."""

import pytest

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.ddp.buckets import MIB, bucket_bytes, caps_bytes, plan_buckets

Task = REGISTRY.get("m5.bucket_tuning")
module = __import__(Task.__module__, fromlist=["ddp_buckets"])
#: the tiny MLP 128-256-512-512-256-10's parameter bytes (float32), registration order
SIZES = [131072, 1024, 524288, 2048, 1048576, 2048, 524288, 1024, 10240, 40]


@pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")
def test_check_passes_with_two_gloo_ranks():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["DDP's buckets = the plan from the parameter sizes"]["n"] == 2 * 6  # ranks x runs


def test_default_cap_has_a_1_mib_first_bucket():
    assert caps_bytes(None) == (MIB, 25 * MIB)
    # last layer first: 40 + 10240 + 1024 + 524288 + 2048 + 1048576 = 1586216 >= 1 MiB closes bucket 1
    assert module.ddp_buckets(SIZES, None) == [1586216, 658432]


def test_half_mib_buckets_overshoot_by_one_tensor():
    assert module.ddp_buckets(SIZES, 0.5) == [535592, 1050624, 526336, 132096]
    assert plan_buckets([4, 4, 4], 8 / MIB) == [[0, 1], [2]]


def test_the_wrong_formulas_disagree_with_ddp():
    for wrong in (module.buckets_forward_order, module.buckets_never_overshoot):
        assert wrong(SIZES, 0.5) != module.ddp_buckets(SIZES, 0.5)
    assert module.buckets_no_small_first(SIZES, None) == [sum(SIZES)]


def test_bucket_bytes_and_bad_cap():
    assert bucket_bytes([1, 2, 3], [[0, 2], [1]]) == [4, 2]
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0"):
        caps_bytes(0)
