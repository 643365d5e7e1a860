"""Graph pieces by hand; the GCN itself (layer, A_hat, training) lives in :mod:`models.gcn`.

* :mod:`kernels.graph.wrong`: plausible wrong adjacency normalisations (research.gnn's mutants).
"""
