"""harness.train_text's length-batched classification pieces (rnn.imdb_sentiment uses them)."""

import torch

from harness.train_text import length_step, random_length_batches
from models.sequence import SequenceModel, SequenceModelConfig


def test_random_length_batches_are_seeded_and_trimmed():
    ids = torch.arange(40).reshape(4, 10)
    data = ids, torch.tensor([3, 5, 2, 4]), torch.tensor([0, 1, 0, 1])
    draw = random_length_batches(data, 3, "cpu")
    a, b = draw(torch.Generator().manual_seed(0)), draw(torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    rows = a[0][:, 0] // 10  # row r of ids starts at 10 r
    assert a[0].shape == (3, int(a[1].max())) and torch.equal(a[0], ids[rows, : a[0].shape[1]])
    assert torch.equal(a[1], data[1][rows]) and torch.equal(a[2], data[2][rows])


def test_length_step_moves_the_weights_and_returns_the_loss():
    torch.manual_seed(0)
    model = SequenceModel(SequenceModelConfig(20, 4, 8, output_size=2, head="last"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = torch.randint(2, 20, (5, 6)), torch.tensor([6, 3, 4, 6, 1]), torch.tensor([0, 1, 1, 0, 1])
    before = [p.detach().clone() for p in model.parameters()]
    loss = length_step(model, opt, batch)
    assert loss.ndim == 0 and not loss.requires_grad
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_record_attention_map_draws_source_across_and_output_down(monkeypatch):
    import harness.train_text as tt

    w, seen = torch.rand(3, 2), {}
    monkeypatch.setattr(tt, "attention_map", lambda model, vocab, source: (w, ["a", "b"], ["x", "y", "<eos>"]))
    ctx = type("Ctx", (), {"heatmap": lambda self, title, z, **kw: seen.update(title=title, z=z, **kw)})()
    tt.record_attention_map(ctx, "attention map", None, None, "a b", "cap")
    assert seen["title"] == "attention map" and seen["z"] is w and seen["caption"] == "cap"
    assert seen["x"] == ["a", "b"] and seen["y"] == ["x", "y", "<eos>"]
    assert (seen["x_label"], seen["y_label"]) == ("source word", "output word")
