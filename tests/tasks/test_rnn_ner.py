"""5.09 ner: CoNLL reader round trip, conlleval worked examples, tagger F1 (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.data import iob1_to_bio, synthetic_ner
from harness.data.writers import bio_to_iob1, write_conll
from harness.testing import run_check
from kernels.text import ner_metrics
from kernels.text.ner_examples import WORKED_EXAMPLES

Task = REGISTRY.get("rnn.ner")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["worked examples: chunk counts"]["n"] == len(WORKED_EXAMPLES)
    assert rec.metrics["check_entity_f1"] >= Task.sizes["tiny"].min_f1


def test_bio_to_iob1_inverts_iob1_to_bio():
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
    iob1 = bio_to_iob1(tags)
    assert iob1 == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"]
    assert iob1_to_bio(iob1) == tags
    assert ner_metrics.conlleval([tags], [tags]).f1 == 1.0


def test_bench_reads_real_conll_files_when_present(tmp_path, monkeypatch):
    (tmp_path / "conll2003").mkdir()
    write_conll(tmp_path / "conll2003" / "eng.train", synthetic_ner(6, seed=1))
    write_conll(tmp_path / "conll2003" / "eng.testb", synthetic_ner(4, seed=2))
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    train, test, desc = Task().data(Task.sizes["tiny"], seed=0, real=True)
    assert "real files" in desc and len(train) == 6 and len(test) == 4
    assert train.tags == synthetic_ner(6, seed=1).tags  # IOB1 on disk, BIO after reading
