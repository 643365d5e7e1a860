"""Graph convolutional network (Kipf & Welling 2017, "Semi-Supervised Classification with Graph
Convolutional Networks", ICLR, arXiv:1609.02907), dense and sparse, plus the graphs it trains on.

One layer: H' = A_hat H W with A_hat = D^-1/2 (A + I) D^-1/2, D the degree matrix of A + I
(eq. 2 of the paper, the "renormalisation trick"). ``adj`` is a dense (N, N) tensor or a sparse
COO one; ``torch.sparse.mm`` costs O(edges x F) where the dense product costs O(N^2 x F).
Shape legend: N nodes, F input features, H hidden features, C classes, E edges (directed pairs).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


def normalized_adjacency(adj: torch.Tensor) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 of a dense symmetric (N, N) 0/1 adjacency; dense (N, N).

    Raises ValueError for a non-square matrix."""
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"normalized_adjacency: need a square (N, N) adjacency, got {tuple(adj.shape)}")
    a = adj + torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)  # self-loops
    d = a.sum(1).rsqrt()  # (N,) D^-1/2 of A + I (every degree >= 1 thanks to the loop)
    return d[:, None] * a * d[None, :]


def sparse_normalized_adjacency(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The same A_hat as sparse COO (N, N) from edge_index int64 (2, E) holding both directions of
    each undirected edge and no self-loops (they are added here)."""
    loops = torch.arange(n, device=edge_index.device)
    idx = torch.cat([edge_index, torch.stack([loops, loops])], 1)  # (2, E + N)
    deg = torch.bincount(idx[0], minlength=n).to(dtype)  # (N,) degree of A + I
    w = deg[idx[0]].rsqrt() * deg[idx[1]].rsqrt()  # (E + N,) 1 / sqrt(d_i d_j)
    return torch.sparse_coo_tensor(idx, w, (n, n), check_invariants=True).coalesce()


def edge_index_of(adj: torch.Tensor) -> torch.Tensor:
    """int64 (2, E): the nonzero (row, col) pairs of a dense adjacency."""
    return adj.nonzero().t().contiguous()


def row_normalize(x: torch.Tensor) -> torch.Tensor:
    """Features (N, F) divided by their row sums (rows summing to 0 stay 0): Kipf's ``preprocess_features``."""
    rows = x.sum(1, keepdim=True)  # (N, 1)
    return torch.where(rows > 0, x / rows, 0.0)


class GCNLayer(nn.Module):
    """H' = A_hat (H W) + b: (N, F) -> (N, H); W is Glorot-initialised as in the paper."""

    def __init__(self, fin: int, fout: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fin, fout))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(fout)) if bias else None

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = x @ self.weight  # (N, H): multiply first, the narrower side goes through A_hat
        out = torch.sparse.mm(adj, h) if adj.is_sparse else adj @ h  # (N, H)
        return out if self.bias is None else out + self.bias


@dataclasses.dataclass(frozen=True)
class GCNConfig:
    """Kipf & Welling 2017 Sec. 5.2 hyperparameters (the defaults)."""

    hidden: int = 16
    """hidden units of the first layer"""
    dropout: float = 0.5
    """dropout on the input of each layer (training only)"""
    lr: float = 0.01
    """Adam learning rate"""
    weight_decay: float = 5e-4
    """L2 on the first layer's weights only (as the paper's code)"""
    epochs: int = 200
    """full-batch training epochs"""


class GCN(nn.Module):
    """Two layers: log-softmax(A_hat relu(A_hat X W0) W1) before the softmax; (N, F) -> (N, C) logits."""

    def __init__(self, fin: int, classes: int, config: GCNConfig = GCNConfig()):
        super().__init__()
        self.config = config
        self.l1, self.l2 = GCNLayer(fin, config.hidden), GCNLayer(config.hidden, classes)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        p = self.config.dropout
        h = F.relu(self.l1(F.dropout(x, p, self.training), adj))  # (N, hidden)
        return self.l2(F.dropout(h, p, self.training), adj)  # (N, C)

    def optimizer(self) -> torch.optim.Adam:
        c = self.config
        return torch.optim.Adam(
            [{"params": self.l1.parameters(), "weight_decay": c.weight_decay}, {"params": self.l2.parameters()}],
            lr=c.lr,
        )


def train_node_classifier(
    model: GCN, x, adj, y, train_mask, eval_mask, epochs: int | None = None, eval_every: int = 20
) -> tuple[list[int], list[float]]:
    """Full-batch Adam on the labelled nodes; (epochs, accuracy on ``eval_mask``) every ``eval_every``
    epochs and after the last."""
    opt, at, accs = model.optimizer(), [], []
    n = epochs or model.config.epochs
    for e in range(1, n + 1):
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, adj)[train_mask], y[train_mask]).backward()
        opt.step()
        if e % eval_every == 0 or e == n:
            model.eval()
            with torch.no_grad():
                accs.append(float((model(x, adj)[eval_mask].argmax(1) == y[eval_mask]).float().mean()))
            at.append(e)
    return at, accs


def fit_gcn(x, adj, y, train_mask, eval_mask, config: GCNConfig = GCNConfig(), seed: int = 0):
    """A fresh two-layer :class:`GCN` (F = x's width, C = max label + 1) from ``torch.manual_seed(seed)``,
    trained by :func:`train_node_classifier` for ``config.epochs``: (epochs, accuracies on ``eval_mask``)."""
    torch.manual_seed(seed)
    model = GCN(x.shape[1], int(y.max()) + 1, config)
    return train_node_classifier(model, x, adj, y, train_mask, eval_mask)


def fit_planetoid(graph, config: GCNConfig = GCNConfig(), seed: int = 0) -> float:
    """Kipf & Welling's recipe on a ``harness.data.planetoid.PlanetoidGraph``: row-normalised features
    (their ``preprocess_features``), sparse A_hat, trained on the public split; the test accuracy."""
    adj = sparse_normalized_adjacency(graph.edge_index, len(graph.y))
    return fit_gcn(row_normalize(graph.x), adj, graph.y, graph.train, graph.test, config, seed)[1][-1]


def pyg_conv_like(layer: GCNLayer):
    """PyTorch Geometric's ``GCNConv`` (an optional dependency) holding ``layer``'s weight and bias:
    the same A_hat H W + b, computed by message passing over an edge_index (2, E)."""
    from torch_geometric.nn import GCNConv

    conv = GCNConv(*layer.weight.shape)
    with torch.no_grad():
        conv.lin.weight.copy_(layer.weight.t())  # GCNConv's Linear stores W^T: (fout, fin)
        conv.bias.copy_(layer.bias)
    return conv


def knn_adjacency(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetric 0/1 dense (N, N) k-nearest-neighbour graph of features x (N, F) (Euclidean, no loops)."""
    d = torch.cdist(x, x)  # (N, N)
    d.fill_diagonal_(float("inf"))
    nn_idx = d.topk(k, largest=False).indices  # (N, k)
    a = torch.zeros_like(d).scatter_(1, nn_idx, 1.0)
    return ((a + a.t()) > 0).to(x.dtype)


def planetoid_split(y: torch.Tensor, per_class: int, n_val: int, n_test: int, seed: int = 0):
    """Boolean masks (train, val, test) over N nodes, Planetoid style: ``per_class`` labelled nodes of
    each class, then ``n_val`` and ``n_test`` from the rest (seeded). Raises ValueError if N is too small."""
    g = torch.Generator().manual_seed(seed)
    n, classes = len(y), int(y.max()) + 1
    train = torch.zeros(n, dtype=torch.bool)
    for c in range(classes):
        idx = (y == c).nonzero().flatten()
        train[idx[torch.randperm(len(idx), generator=g)[:per_class]]] = True
    rest = (~train).nonzero().flatten()
    if len(rest) < n_val + n_test:
        raise ValueError(f"planetoid_split: {len(rest)} unlabelled nodes cannot hold {n_val} + {n_test}")
    rest = rest[torch.randperm(len(rest), generator=g)]
    val, test = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    val[rest[:n_val]], test[rest[n_val : n_val + n_test]] = True, True
    return train, val, test
