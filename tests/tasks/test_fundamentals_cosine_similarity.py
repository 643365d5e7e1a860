"""1.06 cosine_similarity: the check passes and catches planted bugs (eps rules, pairing)."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.cosine_similarity")


def test_check_passes():
    rec = run_check(Task)
    assert {"torch_cosine", "naive", "fused", "no NaN", "eps rule: zero vs zero"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _rows_then_pairs(formula):
    def impl(self, x1, x2, dim, pairwise, eps):
        if pairwise:
            x1, x2, dim = x1.unsqueeze(-2), x2.unsqueeze(-3), -1
        return lambda: formula(x1, x2, dim, eps)

    return impl


def test_cosine_without_eps_is_caught():
    # zero vectors give 0/0 = NaN
    no_eps = _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d)))
    expect_check_fails(planted(Task, "naive", no_eps), match="naive")


def test_product_clamp_is_caught():
    # the old documented formula: max(||x1|| ||x2||, eps)
    product = _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / (a.norm(dim=d) * b.norm(dim=d)).clamp_min(eps))
    expect_check_fails(planted(Task, "naive", product), match="naive")  # the norm-1e-9 rows in every trial catch it


def test_eps_added_to_norms_is_caught():
    added = _rows_then_pairs(lambda a, b, d, eps: (a * b).sum(d) / ((a.norm(dim=d) + eps) * (b.norm(dim=d) + eps)))
    expect_check_fails(planted(Task, "fused", added), match="fused")


def test_pairwise_transposed_is_caught():
    def transposed(self, x1, x2, dim, pairwise, eps):
        if not pairwise:
            return lambda: torch.nn.functional.cosine_similarity(x1, x2, dim=dim, eps=eps)
        mod = __import__(Task.__module__, fromlist=["x"])
        return lambda: mod.cosine_pairwise_matmul(x2, x1, eps).mT.contiguous().flip(-1)

    expect_check_fails(planted(Task, "fused", transposed), match="fused")
