"""m5 pipeline_parallel: GPipe and 1F1B on 2 gloo ranks equal the single-stage Transformer (its
mutants, unscaled micro-batch losses, the (K-1)/M bubble, GPipe in 1F1B's place: test_mutants.py).
The stage split, the schedule simulation and the stage clock are checked here in one process.
"""

import pickle

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.pipelining import ranks
from kernels.pipelining.pipeline import (
    StageClock,
    gpipe_bubble,
    keep_stage,
    simulate,
    split_points,
    stage_layers,
)

Task = REGISTRY.get("m5.pipeline_parallel")
CFG = Task.sizes["tiny"]


@pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")
def test_check_passes_with_two_gloo_ranks():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"pipelined outputs = single-stage outputs", "pipelined gradients = single-stage gradients",
            "activations in flight per stage", "bubble formula = simulated schedule"} <= set(rec.checks)  # fmt: skip


def test_bubble_worked_examples():
    # GPipe (Huang et al. 2019): K = 2 idles half the step at M = 1, 1/9 at M = 8
    assert gpipe_bubble(2, 1) == 0.5 and gpipe_bubble(2, 8) == pytest.approx(1 / 9)
    assert gpipe_bubble(1, 4) == 0.0 and gpipe_bubble(4, 12) == pytest.approx(0.2)  # M = 4K: 20 %
    with pytest.raises(ValueError, match="micro-batches"):
        gpipe_bubble(2, 0)


def test_simulated_schedules_hold_m_or_k_activations():
    gpipe, one_f = simulate(4, 8, "gpipe"), simulate(4, 8, "1f1b")
    assert gpipe["in_flight"] == [8, 8, 8, 8] and one_f["in_flight"] == [4, 3, 2, 1]
    assert gpipe["makespan"] == one_f["makespan"] == (8 + 3) * 3  # (M + K - 1) slots of F + B
    assert simulate(2, 1, "1f1b")["in_flight"] == [1, 1]
    with pytest.raises(ValueError, match="unknown schedule"):
        simulate(2, 2, "zero_bubble")


def test_stages_split_the_model_and_compose_to_it():
    assert stage_layers(4, 0, 2) == [0, 1] and stage_layers(5, 1, 2) == [3, 4] and split_points(4, 2) == ["blocks.2"]
    with pytest.raises(ValueError, match="cannot fill"):
        stage_layers(1, 0, 2)
    torch.manual_seed(0)
    full = CFG.model()
    names = {n for n, _ in full.named_parameters()}
    stages = []
    for s in range(2):
        torch.manual_seed(0)
        stages.append(keep_stage(CFG.model(), s, 2))
    got = [{n for n, _ in m.named_parameters()} for m in stages]
    assert got[0] | got[1] == names and not got[0] & got[1]
    ids, _ = ranks.batch(CFG, 0)
    h = stages[0](ids)  # (B, T, E) activations cross the stage boundary
    assert h.shape == (CFG.batch, CFG.seq_len, CFG.d_model)
    torch.testing.assert_close(stages[1](h), full(ids))


def test_stage_clock_counts_busy_time_and_activations_in_flight():
    clock = StageClock()
    fwd, bwd = clock.timed(lambda: None, +1), clock.timed(lambda: None, -1)
    for f in (fwd, fwd, bwd, fwd, bwd, bwd):
        f()
    assert clock.peak == 2 and clock.held == 0 and clock.busy_s >= 0
    clock.reset()
    assert (clock.busy_s, clock.held, clock.peak) == (0.0, 0, 0)


def test_rank_functions_and_mutants_pickle_by_reference():
    module = __import__(Task.__module__, fromlist=["bubble_over_m"])
    for fn in (ranks.grads_rank, ranks.bench_rank, module.bubble_over_m):
        blob = pickle.dumps(fn)
        assert len(blob) < 200 and pickle.loads(blob) is fn
