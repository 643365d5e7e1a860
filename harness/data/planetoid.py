"""Reader for the Planetoid citation graphs (Cora, Citeseer, Pubmed) in their original files.

Format (Yang, Cohen & Salakhutdinov 2016, "Revisiting Semi-Supervised Learning with Graph
Embeddings", github.com/kimiyoung/planetoid; read the same way by Kipf & Welling's
``gcn/utils.py:load_data`` and PyTorch Geometric's ``read_planetoid_data``): eight files
``ind.<name>.<part>`` in one folder:

* ``x``, ``tx``, ``allx``: pickled ``scipy.sparse`` feature matrices of the labelled training
  nodes, the test nodes, and every node that is not a test node (``x`` is the first rows of
  ``allx``);
* ``y``, ``ty``, ``ally``: pickled NumPy one-hot label matrices, same rows;
* ``graph``: a pickled dict {node: [neighbours]} over all nodes;
* ``test.index``: text, one test node id per line, in the order of ``tx``'s rows.

Node order: ``allx`` rows are nodes 0 .. len(allx)-1; ``tx`` row j is node ``test.index[j]``
(the ids are not sorted in the file). Citeseer has 15 test ids with no row (isolated nodes
in the id range of ``test.index`` that the file does not list, without a ``tx`` row): they get
zero features and no label (y = -1 here; PyG gives them class 0, Kipf a zero label row), and
belong to no split. Split (the "public" Planetoid split): train =
the first len(y) nodes (20 per class), validation = the next 500, test = the 1,000 ids of
``test.index``. Pickles are loaded with ``encoding="latin1"`` (they were written by Python 2).
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataFormatError, DataNotFoundError

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
NAMES = ("cora", "citeseer", "pubmed")


@dataclass(frozen=True)
class PlanetoidGraph:
    """One citation graph, with the public split.

    Fields:
        name: "cora", "citeseer" or "pubmed".
        x: float32 (N, F) node features as stored (bag-of-words 0/1 for Cora and Citeseer,
            TF-IDF for Pubmed); Kipf & Welling row-normalise them before training.
        y: int64 (N,) class ids; -1 for Citeseer's isolated test ids without a label.
        edge_index: int64 (2, E) directed edges, both directions of every undirected
            edge, no self loops, sorted by (row, col), no duplicates.
        train, val, test: bool (N,) masks of the public split.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    edge_index: torch.Tensor
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


class _Unpickler(pickle.Unpickler):
    """Allows only what the Planetoid files hold (NumPy arrays, SciPy sparse matrices,
    dicts / defaultdicts of lists): a file with anything else is refused, not executed."""

    _ALLOWED_PREFIXES = ("numpy", "scipy.sparse", "collections")
    _PLUMBING = {("_codecs", "encode"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor")} | {
        ("builtins", n) for n in ("list", "dict", "set", "tuple", "int", "float", "object", "bytes", "bytearray")
    }

    def find_class(self, module: str, name: str):
        # protocol-2 pickles rebuild arrays' bytes with _codecs.encode and objects with
        # copyreg._reconstructor: data, not code
        if (module, name) in self._PLUMBING:
            return super().find_class(module, name)
        if module.startswith(self._ALLOWED_PREFIXES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}")


def _load(path: Path):
    with path.open("rb") as f:
        try:
            return _Unpickler(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise DataFormatError(path, "a pickle of NumPy/SciPy arrays or a dict of lists", str(e),
                                  "re-download the Planetoid files") from e  # fmt: skip


def _dense(m) -> np.ndarray:
    return np.asarray(m.todense() if hasattr(m, "todense") else m, dtype=np.float32)


def read_planetoid(folder: str | Path, name: str) -> PlanetoidGraph:
    """Read ``ind.<name>.*`` from ``folder``.

    Raises DataNotFoundError when a part is missing (names the file), DataFormatError when a
    file is not what the format says (shapes disagree, a label row is not one-hot).
    """
    folder, name = Path(folder), name.lower()
    missing = [p for p in PARTS if not (folder / f"ind.{name}.{p}").is_file()]
    if missing:
        raise DataNotFoundError(f"Planetoid {name}", [str(folder / f"ind.{name}.{p}") for p in missing],
                                f"put the eight files ind.{name}.{{{','.join(PARTS)}}} in that folder")  # fmt: skip
    x, y, tx, ty, allx, ally, graph = (_load(folder / f"ind.{name}.{p}") for p in PARTS[:-1])
    test_ids = np.array([int(line) for line in (folder / f"ind.{name}.test.index").read_text().split()])
    allx, tx, ally, ty = _dense(allx), _dense(tx), _dense(ally), _dense(ty)
    if len(tx) != len(ty) or len(allx) != len(ally) or len(tx) != len(test_ids):
        raise DataFormatError(folder, "as many rows in allx as ally, and in tx, ty and test.index",
                              f"allx {len(allx)}, ally {len(ally)}, tx {len(tx)}, ty {len(ty)}, "
                              f"test ids {len(test_ids)}")  # fmt: skip
    n = max(len(allx), int(test_ids.max()) + 1, max(graph) + 1 if graph else 0)
    feats = np.zeros((n, allx.shape[1]), np.float32)  # (N, F)
    labels = np.full(n, -1, np.int64)  # (N,)
    feats[: len(allx)], labels[: len(allx)] = allx, _argmax_one_hot(ally, folder / f"ind.{name}.ally")
    # tx's row j is node test_ids[j] (the file's order): this is what Kipf's
    # features[test_idx_reorder] = features[test_idx_range] and PyG's x[test_index] = x[sorted_test_index]
    # do, once tx sits at the sorted ids; Citeseer's unlisted ids stay zero and unlabelled.
    feats[test_ids], labels[test_ids] = tx, _argmax_one_hot(ty, folder / f"ind.{name}.ty")
    src = [(int(a), int(b)) for a, nbrs in graph.items() for b in nbrs if int(a) != int(b)]
    e = torch.tensor(src, dtype=torch.int64).t() if src else torch.zeros(2, 0, dtype=torch.int64)  # (2, E)
    e = torch.cat([e, e.flip(0)], 1).unique(dim=1)  # symmetric, coalesced, sorted by (row, col)
    mask = lambda ids: torch.zeros(n, dtype=torch.bool).index_fill_(0, torch.as_tensor(ids, dtype=torch.int64), True)  # noqa: E731 - three uses, one line each
    test = mask(test_ids) & torch.from_numpy(labels >= 0)
    return PlanetoidGraph(name, torch.from_numpy(feats), torch.from_numpy(labels), e,
                          mask(range(len(y))), mask(range(len(y), len(y) + 500)), test)  # fmt: skip


def _argmax_one_hot(m: np.ndarray, path: Path) -> np.ndarray:
    """Class ids of one-hot rows; an all-zero row (a node without a label) gives -1."""
    if not np.all(np.isin(m, (0.0, 1.0))) or (m.sum(1) > 1).any():
        raise DataFormatError(path, "one-hot label rows", "values other than 0/1 or several 1s in a row")
    return np.where(m.sum(1) > 0, m.argmax(1), -1)


def find_planetoid(folder: str | Path) -> dict[str, Path]:
    """The Planetoid data sets present under ``folder``: {name: folder holding its files},
    looking in ``folder``, ``folder/<Name>/raw`` (PyG's layout) and ``folder/<name>``."""
    folder = Path(folder)
    found = {}
    for name in NAMES:
        for d in (folder, folder / name, folder / name.capitalize() / "raw", folder / "planetoid" / name):
            if (d / f"ind.{name}.graph").is_file():
                found[name] = d
                break
    return found


if __name__ == "__main__":  # pragma: no cover - a quick look at a folder: python -m harness.data.planetoid DIR
    for nm, d in find_planetoid(sys.argv[1]).items():
        gr = read_planetoid(d, nm)
        print(nm, tuple(gr.x.shape), gr.edge_index.shape[1] // 2, "edges", int(gr.train.sum()), int(gr.test.sum()))
