"""research.gnn: the GCN normalisation, dense = sparse, the Planetoid split (mutants: test_mutants.py)."""

import dataclasses

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from models.gcn import (
    GCN,
    GCNConfig,
    edge_index_of,
    knn_adjacency,
    normalized_adjacency,
    planetoid_split,
    sparse_normalized_adjacency,
)

Task = REGISTRY.get("research.gnn")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"GCN layer = D^-1/2 (A+I) D^-1/2 X W + b formula", "GCN beats the MLP"} <= set(rec.checks)


def test_normalisation_on_a_path_graph():
    a = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float32)
    # degrees of A + I: 2, 3, 2; entry (i, j) = 1 / sqrt(d_i d_j) where A + I is 1
    s6 = 6**-0.5
    want = torch.tensor([[1 / 2, s6, 0], [s6, 1 / 3, s6], [0, s6, 1 / 2]])
    assert torch.allclose(normalized_adjacency(a), want)
    assert torch.allclose(sparse_normalized_adjacency(edge_index_of(a), 3).to_dense(), want)
    with pytest.raises(ValueError, match="square"):
        normalized_adjacency(torch.zeros(2, 3))


def test_kipf_welling_hyperparameters_and_weight_decay_groups():
    c = GCNConfig()
    assert (c.hidden, c.dropout, c.lr, c.weight_decay, c.epochs) == (16, 0.5, 0.01, 5e-4, 200)
    groups = GCN(5, 3).optimizer().param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0]


def test_knn_graph_symmetric_and_split_counts():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    a = knn_adjacency(x, 3)
    assert torch.equal(a, a.t()) and not a.diagonal().any() and (a.sum(1) >= 3).all()
    y = torch.arange(50) % 5
    tr, va, te = planetoid_split(y, 2, 10, 20)
    assert int(tr.sum()) == 10 and int(va.sum()) == 10 and int(te.sum()) == 20
    assert torch.bincount(y[tr]).tolist() == [2] * 5 and not (tr & va).any() and not (va & te).any()


def test_planetoid_files_under_data_dir_are_trained_on(tmp_path, monkeypatch):
    """The bench's "ours" column for Cora comes from Cora's own files when --data-dir has them
    (here a small graph in the Planetoid format whose labels follow its edges)."""
    from harness.context import Context, TaskRecord
    from harness.data.writers import write_planetoid

    (tmp_path / "cora").mkdir()
    write_planetoid(tmp_path / "cora", "cora")
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    task = Task()
    rec = TaskRecord(id=Task.id)
    ctx = Context(task, mode="bench", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0, record=rec)
    run = dataclasses.replace(Task.sizes["tiny"], gcn=GCNConfig(epochs=5))
    got = task._planetoid(ctx, run)
    assert set(got) == {"cora"} and 0.0 <= got["cora"] <= 1.0
    assert rec.metrics["cora_test_acc"] == pytest.approx(got["cora"], rel=1e-5)
