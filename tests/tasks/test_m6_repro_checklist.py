"""m6 repro_checklist: the capture is live (mutants: test_mutants.py); the checklist's verdicts."""

from harness import REGISTRY
from harness import repro as R
from harness.testing import run_check

Task = REGISTRY.get("m6.repro_checklist")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    rows = rec.tables[0]["rows"]
    assert {r["item"] for r in rows} >= {"deterministic algorithms", "seed set", "cuBLAS workspace pinned"}


def test_checklist_verdicts_on_a_hand_written_capture():
    cap = {**R.capture(), "git_dirty": True, "torch_initial_seed": R.DEFAULT_TORCH_SEED, "cudnn_benchmark": True}
    items = {i["item"]: i for i in R.checklist(cap)}
    assert items["code pinned to a commit"]["ok"] is False and "commit" in items["code pinned to a commit"]["advice"]
    assert items["seed set"]["ok"] is False and items["cuDNN autotuner off"]["ok"] is False
    assert items["CPU kernels (SIMD level)"]["ok"] is None  # informational
