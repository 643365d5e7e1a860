"""CSV reader, standardisation fitted on train only, stratified split, sklearn sets."""

import pytest
import torch

from harness.data import (
    DataFormatError,
    fit_standardizer,
    load_digits_images,
    load_tabular,
    read_csv_table,
    standardize,
    stratified_split,
)

CSV = """sepal_len,sepal_wid,species,petal_len
5.1,3.5,setosa,1.4
7.0,3.2,versicolor,4.7

6.3,3.3,virginica,6.0
4.9,3.0,setosa,1.4
"""


def test_csv_round_trip(tmp_path):
    p = tmp_path / "iris.csv"
    p.write_text(CSV)
    t = read_csv_table(p, label="species")
    assert t.feature_names == ("sepal_len", "sepal_wid", "petal_len")
    assert t.classes == ("setosa", "versicolor", "virginica")
    assert t.features.dtype == torch.float32 and t.features.shape == (4, 3)
    assert t.features[1].tolist() == pytest.approx([7.0, 3.2, 4.7])
    assert t.labels.tolist() == [0, 1, 2, 0]
    x, y = read_csv_table(p, label="species", features=["petal_len"])
    assert x.shape == (4, 1)


def test_tsv_and_integer_labels_sort_numerically(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("a\ty\n1\t10\n2\t9\n3\t10\n")
    t = read_csv_table(p, label="y")
    assert t.classes == ("9", "10") and t.labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,b\n1,2\n", r"label column named 'y'.*\['a', 'b'\]"),
        ("a,y\n1,x\nfoo,x\n", r"number in column 'a' on line 3.*'foo'"),
        ("a,y\n1,x\n,x\n", r"line 3.*missing value"),
        ("a,y\n1,x\n1,2,3\n", r"2 fields on line 3.*3"),
        ("", "empty file"),
    ],
)
def test_csv_errors_name_file_and_place(tmp_path, text, pattern):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataFormatError, match="bad.csv.*" + pattern):
        read_csv_table(p, label="y")


def test_standardizer_uses_train_statistics_only():
    train = torch.tensor([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    test = torch.tensor([[100.0, 7.0]])
    mean, std = fit_standardizer(train)
    assert mean.tolist() == [2.0, 5.0]
    assert std[0].item() == pytest.approx((8 / 3) ** 0.5)  # population std
    assert std[1].item() == 1.0  # constant feature: no division by zero
    z = standardize(train, mean, std)
    assert z.mean(0).abs().max() < 1e-6
    # test rows are transformed with train statistics, not their own
    assert standardize(test, mean, std)[0, 0].item() == pytest.approx(98 / std[0].item())
    with pytest.raises(TypeError):
        fit_standardizer(torch.ones(3, 2, dtype=torch.int64))


def test_stratified_split_is_seeded_and_stratified():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20 + [3])
    tr, te = stratified_split(y, 0.2, seed=7)
    assert torch.equal(torch.cat([tr, te]).sort().values, torch.arange(len(y)))
    assert set(tr.tolist()).isdisjoint(te.tolist())
    assert torch.bincount(y[te], minlength=4).tolist() == [10, 6, 4, 0]
    tr2, te2 = stratified_split(y, 0.2, seed=7)
    assert torch.equal(te, te2) and torch.equal(tr, tr2)
    assert not torch.equal(te, stratified_split(y, 0.2, seed=8)[1])
    with pytest.raises(ValueError):
        stratified_split(y, 1.0)


def test_embedded_sklearn_sets():
    d = load_digits_images()
    assert d.images.shape == (1797, 8, 8) and d.images.dtype == torch.uint8
    assert int(d.images.max()) == 16 and d.labels.dtype == torch.int64
    assert torch.bincount(d.labels).min() > 170 and not d.synthetic
    for name, shape, k in [("breast_cancer", (569, 30), 2), ("wine", (178, 13), 3), ("iris", (150, 4), 3)]:
        t = load_tabular(name)
        assert t.features.shape == shape and t.features.dtype == torch.float32
        assert len(t.classes) == k and len(t.feature_names) == shape[1]
    with pytest.raises(ValueError, match="choose one of"):
        load_tabular("titanic")
