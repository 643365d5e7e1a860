"""The Planetoid reader on small files written here in the original format (scipy.sparse and
NumPy pickles, a dict graph, test.index in file order), checked against PyTorch Geometric's
``read_planetoid_data`` where that is installed, and on what it must refuse."""

import pickle

import numpy as np
import pytest
import torch

from harness.data.errors import DataFormatError, DataNotFoundError
from harness.data.planetoid import find_planetoid, read_planetoid
from harness.data.writers import write_planetoid


@pytest.mark.parametrize("name,gap", [("cora", 0), ("citeseer", 5)])
def test_reader_puts_every_row_at_its_node(tmp_path, name, gap):
    x, y, test_ids = write_planetoid(tmp_path, name, gap=gap)
    g = read_planetoid(tmp_path, name)
    listed = torch.zeros(len(x), dtype=torch.bool)
    listed[:560] = True
    listed[torch.from_numpy(test_ids)] = True
    assert torch.equal(g.x[listed], x[listed]) and torch.equal(g.y[listed], y[listed])
    assert (g.x[~listed] == 0).all() and (g.y[~listed] == -1).all() and int((~listed).sum()) == gap
    assert int(g.train.sum()) == 6 and int(g.val.sum()) == 500 and int(g.test.sum()) == 40
    e = g.edge_index
    assert (e[0] != e[1]).all(), "self loops removed"
    pairs = set(map(tuple, e.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs), "both directions of every edge"
    assert len(pairs) == e.shape[1], "no duplicate edges"
    assert find_planetoid(tmp_path) == {name: tmp_path}


@pytest.mark.parametrize("name,gap", [("cora", 0), ("citeseer", 5)])
def test_reader_equals_pytorch_geometric(tmp_path, name, gap):
    pyg = pytest.importorskip("torch_geometric.io", reason="needs torch_geometric (the reference reader)")
    write_planetoid(tmp_path, name, gap=gap, seed=1)
    ours, ref = read_planetoid(tmp_path, name), pyg.read_planetoid_data(str(tmp_path), name)
    assert torch.equal(ours.x, ref.x)
    labelled = ours.y >= 0
    assert torch.equal(ours.y[labelled], ref.y[labelled])  # PyG gives unlabelled isolated nodes class 0
    edges = lambda e: sorted(map(tuple, e.t().tolist()))  # noqa: E731 - PyG orders by target, we by source
    assert edges(ours.edge_index) == edges(ref.edge_index)
    for mine, theirs in ((ours.train, ref.train_mask), (ours.val, ref.val_mask), (ours.test, ref.test_mask)):
        assert torch.equal(mine, theirs)


def test_missing_part_and_foreign_objects_are_refused(tmp_path):
    write_planetoid(tmp_path, "cora")
    (tmp_path / "ind.cora.ty").unlink()
    with pytest.raises(DataNotFoundError, match=r"ind\.cora\.ty"):
        read_planetoid(tmp_path, "cora")
    with open(tmp_path / "ind.cora.ty", "wb") as f:
        pickle.dump(print, f)  # a pickle that names a callable: never executed
    with pytest.raises(DataFormatError, match="builtins.print"):
        read_planetoid(tmp_path, "cora")
    with open(tmp_path / "ind.cora.ty", "wb") as f:
        pickle.dump(np.full((40, 3), 0.5), f)
    with pytest.raises(DataFormatError, match="one-hot"):
        read_planetoid(tmp_path, "cora")
