"""m1.manual_broadcast: engines equal torch on all enumerated pairs; planted rule/engine bugs are caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.tensor.iterator import broadcast_shape

Task = REGISTRY.get("m1.manual_broadcast")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["enumerated_pairs"] == 14641
    assert {
        "rule equals torch on all 14,641 pairs",
        "strided_gather: values on the enumerated pairs",
        "expand_views: values on the enumerated pairs",
    } <= set(rec.checks)


def _max_rule(*shapes):
    """Accepts any sizes and takes the largest: (3,) vs (4,) 'broadcasts' to (4,)."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    return tuple(max(d) for d in zip(*padded))


def _left_aligned(*shapes):
    """Pads on the right (aligns on the first dim): (3,) with (3, 1) gives (3, 1)."""
    n = max(len(s) for s in shapes)
    return broadcast_shape(*[tuple(s) + (1,) * (n - len(s)) for s in shapes])


def test_rule_accepting_3_vs_4_is_caught():
    class Wrong(Task):
        shape_rule = staticmethod(_max_rule)

    expect_check_fails(Wrong, match="rule gives (4,)")


def test_left_aligned_rule_is_caught():
    class Wrong(Task):
        shape_rule = staticmethod(_left_aligned)

    expect_check_fails(Wrong, match="disagree with torch")


def test_engine_padding_on_the_wrong_side_is_caught():
    class Wrong(Task):
        def strided_gather(self, op, a, b):
            n = max(a.dim(), b.dim())
            if b.dim() < n:  # pads b's shape on the right: (3,) becomes (3, 1), a column
                b = b.reshape(tuple(b.shape) + (1,) * (n - b.dim()))
            return super().strided_gather(op, a, b)

    expect_check_fails(Wrong, match="strided_gather")
