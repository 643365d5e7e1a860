"""5.03 imdb_sentiment: IMDB folder round trip, train-only vocabulary, above chance; planted bugs are caught."""

import dataclasses

import torch.nn.functional as F

from harness import REGISTRY, Context
from harness.data import WordTokenizer, read_imdb
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("rnn.imdb_sentiment")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["check_test_accuracy"] >= Task.sizes["tiny"].min_accuracy


class SwapsLabels(Task):
    @staticmethod
    def read_fn(root, split, **kw):
        d = read_imdb(root, split, **kw)
        return dataclasses.replace(d, labels=1 - d.labels)


class VocabOnAllText(Task):
    def fit_tokenizer(self, train, test, cfg):
        return WordTokenizer.fit(train.texts + test.texts, max_size=cfg.vocab_size)


class NeverSteps(Task):
    sizes = {**Task.sizes, "tiny": dataclasses.replace(Task.sizes["tiny"], steps=10)}

    def train_step(self, model, opt, batch):
        ids, lengths, y = batch
        loss = F.cross_entropy(model(ids, lengths), y)
        loss.backward()
        return loss.detach()


def test_reader_swapping_labels_is_caught():
    expect_check_fails(SwapsLabels, match="IMDB round trip")


def test_vocabulary_fitted_on_test_text_is_caught():
    expect_check_fails(VocabOnAllText, match="vocabulary holds words absent")


def test_optimizer_that_never_steps_is_caught():
    expect_check_fails(NeverSteps, match="test accuracy")


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
