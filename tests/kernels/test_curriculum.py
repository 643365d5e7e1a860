"""kernels.curriculum.pacing: label noise and the paced training loop (the pacing itself: tests/tasks)."""

import torch

from kernels.curriculum.pacing import noisy_labels, train_paced


def test_noisy_labels_replaces_about_the_share_and_copies():
    y = torch.zeros(10_000, dtype=torch.int64)
    noisy = noisy_labels(y, 0.4, torch.Generator().manual_seed(0))
    assert y.eq(0).all()  # the input is not modified
    changed = float(noisy.ne(0).float().mean())
    assert abs(changed - 0.4 * 0.9) < 0.02  # a replaced label keeps its class 1 time in 10
    assert noisy_labels(y, 0.0, torch.Generator().manual_seed(0)).equal(y)


def test_train_paced_is_seeded_and_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    y = (x[:, 0] > 0).long()
    data = (x, y, x, y)
    order = torch.arange(200)
    runs = [train_paced(order, lambda t: 1.0, data, 60, seed=1, classes=2) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0] > 0.9
