"""harness.data.reviews.load_reviews: IMDB folders when $DRILLS_DATA_DIR holds them, else synthetic."""

from harness.data.reviews import load_reviews
from harness.data.synthetic import synthetic_reviews
from harness.data.writers import write_imdb


def test_synthetic_without_files(monkeypatch, tmp_path):
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    tr, te, desc = load_reviews(30, 10)
    assert (len(tr), len(te)) == (30, 10) and desc.startswith("SYNTHETIC")


def test_real_folders_capped_to_a_mix_of_classes(monkeypatch, tmp_path):
    root = tmp_path / "imdb" / "aclImdb"
    write_imdb(root, "train", synthetic_reviews(40, seed=3), seed=0)
    write_imdb(root, "test", synthetic_reviews(20, seed=4), seed=1)
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    tr, te, desc = load_reviews(12, 6)
    assert (len(tr), len(te)) == (12, 6) and "SYNTHETIC" not in desc
    assert set(tr.labels.tolist()) == {0, 1}  # shuffled before the cap: not one class only
