"""Small real graphs available offline: scikit-learn's digits as a kNN graph, Zachary's karate club.

* :func:`digits_graph`: the 1,797 8x8 digits, pixels standardised, joined to their k nearest
  neighbours (a graph built from the features, not a citation graph);
* :func:`karate_club`: networkx's ``karate_club_graph`` (Zachary 1977: 34 members, 78
  friendships, the club's split between Mr. Hi and the officer as labels).

The citation graphs (Cora, Citeseer, Pubmed) are read from their files by :mod:`harness.data.planetoid`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def digits_graph(k: int, knn: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """(x float32 (1797, 64) standardised pixels, y int64 (1797,), adjacency ``knn(x, k)`` (1797, 1797))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)  # (1797, 64) standardised pixels
    return x, torch.tensor(d.target), knn(x, k)


def karate_club() -> tuple[torch.Tensor, torch.Tensor]:
    """(adjacency float32 0/1 (34, 34), y int64 (34,): 1 for the members who left with the officer).

    Raises:
        ModuleNotFoundError: networkx is not installed (``pip install networkx``).
    """
    import networkx as nx

    graph = nx.karate_club_graph()
    a = torch.tensor(nx.to_numpy_array(graph, nodelist=range(34)) > 0, dtype=torch.float32)  # (34, 34)
    y = torch.tensor([graph.nodes[i]["club"] != "Mr. Hi" for i in range(34)], dtype=torch.int64)
    return a, y
