"""10.09 style_transfer: Gram matrix, content and style losses by hand; the loss falls under Adam and L-BFGS."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("research.style_transfer")


def test_check_passes():
    rec = run_check(Task)
    assert {"Gram matrix = F F^T / (C H W)", "content loss", "style loss", "combined loss falls"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
