"""6.08 translation: the check passes (its mutants, a decoder whose self-attention is not causal and a model
that does not learn: test_mutants.py); the shared vocabulary shifts targets by one."""

from harness import REGISTRY
from harness.data import synthetic_translation
from harness.data.parallel import ParallelVocab
from harness.testing import run_check

Task = REGISTRY.get("transformers.translation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["exact_match"] >= 0.9
    assert rec.metrics["train_target_tokens_per_s"] > 0


def test_vocab_shifts_targets_by_one():
    pairs = synthetic_translation(5, seed=3)
    v = ParallelVocab(pairs)
    enc = v.encode(pairs)
    tin, tout = enc.tgt_in, enc.tgt_out
    assert (tin[:, 0] == v.bos).all()
    words = (tout[:, :-1] != 0) & (tout[:, :-1] != v.eos)
    assert (tin[:, 1:][words] == tout[:, :-1][words]).all()
    assert ((tout == v.eos).sum(1) == 1).all()
    assert v.decode(tout[0].tolist()) == v.tgt.decode(v.tgt.encode(pairs.targets[0]))
