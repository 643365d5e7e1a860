"""3.02 mnist_no_torchvision: IDX round trip and accuracy threshold; mutants: test_mutants.py."""

import torch

from harness import REGISTRY, Context
from harness.data import idx
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.mnist_no_torchvision")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"IDX round trip: images", "IDX round trip: labels", "training loss falls"} <= set(rec.checks)
    assert rec.metrics["check_test_accuracy"] >= Task.sizes["tiny"].target_accuracy


def test_bench_data_comes_from_real_idx_files_when_the_data_dir_has_them(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 12), ("test", 5)):
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
        idx.write_mnist(tmp_path / "mnist", split, images, torch.arange(n) % 10)
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    task, ctx = Task(), Context(Task, mode="bench", size="tiny")
    train, test = task.train_data(ctx, Task.sizes["tiny"])
    assert train[0].shape == (12, 28, 28) and test[0].shape == (5, 28, 28)
    assert 0.0 <= float(train[0].min()) and float(train[0].max()) <= 1.0
    assert torch.equal(test[1], torch.arange(5))
    assert (
        "real files" in ctx.record.notes[-1]
        and task.budget(Task.sizes["tiny"]).epochs == Task.sizes["tiny"].real_epochs
    )


def test_bench_falls_back_to_the_embedded_digits(monkeypatch):
    monkeypatch.delenv("DRILLS_DATA_DIR", raising=False)
    ctx = Context(Task, mode="bench", size="tiny")
    train, test = Task().train_data(ctx, Task.sizes["tiny"])
    assert train[0].shape[1:] == (8, 8) and train[0].shape[0] + test[0].shape[0] == 1797
    assert "digits" in ctx.record.notes[-1] and "IDX" in ctx.record.notes[-1]
