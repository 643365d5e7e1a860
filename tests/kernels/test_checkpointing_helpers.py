"""kernels.checkpointing helpers the deployment.checkpointing task calls: the bench's state, the parts
a mutant leaves out, the refusal probe, and the stale-file cleanup after a killed writer."""

from __future__ import annotations

import torch

from harness.checkpoint import atomic_save, load_checkpoint
from kernels.checkpointing import faults
from kernels.checkpointing.run import ALL_PARTS, layered_state, parts_without


def test_layered_state_has_the_size_asked_for():
    state = layered_state(9.0, torch.Generator().manual_seed(0))
    assert list(state)[:2] == ["layer0.weight", "layer1.weight"] and "tail" in state
    assert sum(t.numel() * t.element_size() for t in state.values()) == 9_000_000


def test_parts_without_keeps_the_order_of_all_parts():
    assert parts_without("scaler", "data") == tuple(p for p in ALL_PARTS if p not in ("scaler", "data"))


def test_refusal_names_the_refused_object_and_none_when_loaded(tmp_path):
    err = faults.refusal(load_checkpoint, {"data": object()}, tmp_path / "bad.pt")
    assert err is not None and "refuses" in err
    assert faults.refusal(load_checkpoint, {"w": torch.ones(2)}, tmp_path / "ok.pt") is None


def test_a_failed_write_keeps_the_old_file_and_clear_stale_counts(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"w": torch.zeros(1000)}, path)
    good = path.read_bytes()
    faults.fail_mid_write(atomic_save, {"w": torch.ones(1000)}, path, len(good) // 2)
    assert path.read_bytes() == good
    assert faults.clear_stale(tmp_path) == 0 and path.exists()


def test_unsafe_states_are_each_refused_and_truncated_copy_keeps_the_head(tmp_path):
    states = faults.unsafe_states()
    assert sorted(states) == ["class instance", "numpy RNG tuple"]
    for i, state in enumerate(states.values()):
        assert "refuses" in faults.refusal(load_checkpoint, state, tmp_path / f"bad{i}.pt")
    atomic_save({"w": torch.ones(100)}, tmp_path / "c.pt")
    cut = faults.truncated_copy(tmp_path / "c.pt", tmp_path / "cut.pt", 100)
    assert cut.read_bytes() == (tmp_path / "c.pt").read_bytes()[:100]
