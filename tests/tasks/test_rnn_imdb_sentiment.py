"""5.03 imdb_sentiment: IMDB folder round trip, train-only vocabulary, above chance (mutants: test_mutants.py)."""

from harness import REGISTRY, Context
from harness.testing import run_check

Task = REGISTRY.get("rnn.imdb_sentiment")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["check_test_accuracy"] >= Task.sizes["tiny"].min_accuracy


def test_bench_reads_real_imdb_folders_when_present(tmp_path, monkeypatch):
    root = tmp_path / "imdb" / "aclImdb"
    for split in ("train", "test"):
        for cls, rating in (("neg", 2), ("pos", 9)):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                (root / split / cls / f"{i}_{rating}.txt").write_text(f"A {cls} review<br />number {i}.")
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    ctx = Context(Task, mode="bench", size="tiny", workdir=tmp_path / "work")
    train, test, desc = Task().load(ctx, Task.sizes["tiny"], real=True)
    assert "real files" in desc and len(train) == 6 and len(test) == 6
    assert train.texts[0] == "A neg review number 0." and train.labels.tolist() == [0, 0, 0, 1, 1, 1]
