"""6.03 news_headlines: the check passes; a loader that ignores the files, one that reads a
TSV as CSV, one that keeps each file's own label numbering, one that hides a short row, and a
model that does not learn are caught."""

import dataclasses

from harness import REGISTRY
from harness.data import read_headlines
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("transformers.news_headlines")
module = __import__(Task.__module__, fromlist=["load_headlines"])


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.6
    assert any("SYNTHETIC" in n for n in rec.notes)


def test_loader_that_ignores_the_files_is_caught():
    class Wrong(Task):
        loader = staticmethod(lambda config, data_dir=None: module.load_headlines(config, None))

    expect_check_fails(Wrong, match="headlines read")


def test_tsv_read_as_csv_is_caught(monkeypatch):
    def comma_only(path, **kw):
        return read_headlines(path, delimiter=",")

    monkeypatch.setattr(module, "read_headlines", comma_only)
    expect_check_fails(Task, match="test.tsv")


def test_per_file_label_numbering_is_caught():
    def no_remap(config, data_dir=None):
        tr, te, d = module.load_headlines(config, data_dir)
        if data_dir is not None:
            te = read_headlines(data_dir / "headlines" / "test.tsv")  # labels index the test file's own classes
        return tr, te, d

    class Wrong(Task):
        loader = staticmethod(no_remap)

    expect_check_fails(Wrong, match="labels")


def test_loader_that_hides_a_short_row_is_caught():
    def forgiving(config, data_dir=None):
        try:
            return module.load_headlines(config, data_dir)
        except ValueError:
            return module.load_headlines(config, None)

    class Wrong(Task):
        loader = staticmethod(forgiving)

    expect_check_fails(Wrong, match="short row")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="loss")
