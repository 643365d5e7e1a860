"""5.04 seq2seq: the loss ignores padding and the model learns the toy language (its mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("rnn.seq2seq")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["check_exact_match"] >= Task.sizes["tiny"].min_exact
    assert rec.checks["loss unchanged by padded logits and targets"]["max_abs_err"] == 0.0


def test_vocab_is_built_on_train_only_and_encodes_bos_eos():
    vocab, train, test, desc = Task().data(Task.sizes["tiny"], seed=0)
    assert "synthetic" in desc.lower()
    assert train.tgt_in[0, 0] == vocab.bos
    n = int(train.tgt_len[0])
    assert train.tgt_out[0, n - 1] == vocab.eos and bool((train.tgt_out[0, n:] == 0).all())
    assert vocab.decode(train.tgt_out[0, : n - 1].tolist()) == train.pairs.targets[0]
    assert torch.equal(train.tgt_in[0, 1:n], train.tgt_out[0, : n - 1])


def test_bench_reads_a_real_parallel_tsv_when_present(tmp_path, monkeypatch):
    (tmp_path / "translation").mkdir()
    lines = [f"go {i}.\tva {i} !\tCC-BY 2.0 (France) Attribution: tatoeba.org" for i in range(20)]
    (tmp_path / "translation" / "fra.tsv").write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    vocab, train, test, desc = Task().data(Task.sizes["tiny"], seed=0, real=True)
    assert "real files" in desc and train.src.shape[0] == 18 and test.src.shape[0] == 2
    assert not test.pairs.synthetic and test.pairs.targets[0] == "va 0 !"
