"""models.recurrent: the hand-written LSTM/GRU against nn.LSTM/nn.GRU, directly."""

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from models.recurrent import GRU, LSTM, PRESETS, RecurrentCase, RecurrentConfig, forward_backward, preset
from models.sequence import SequenceModel, SequenceModelConfig

CELLS = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize(
    "case",
    [
        RecurrentCase(5, 3, 4, 6, 1),
        RecurrentCase(6, 4, 3, 5, 3, batch_first=True, initial_state=True),
        RecurrentCase(7, 5, 4, 4, 2, packed="sorted", initial_state=True),
        RecurrentCase(7, 5, 4, 4, 2, batch_first=True, packed="unsorted", initial_state=True),
        RecurrentCase(1, 1, 2, 3, 2, packed="unsorted"),  # one step, one sequence
    ],
    ids=lambda c: c.label() if isinstance(c, RecurrentCase) else c,
)
def test_equal_to_torch_in_float64(cell, case):
    x, lengths, enforce, hx, ref = case.inputs(cell, "cpu", torch.float64, seed=3)
    mine = CELLS[cell][0].from_torch(ref)
    want = forward_backward(ref, x, lengths=lengths, enforce_sorted=enforce, hx=hx)
    got = forward_backward(mine, x, lengths=lengths, enforce_sorted=enforce, hx=hx)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-10, msg=k)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_packed_output_keeps_the_packing_and_states_follow_the_caller_order(cell):
    mine_cls, torch_cls = CELLS[cell]
    torch.manual_seed(0)
    ref = torch_cls(3, 4, 2).double()
    mine = mine_cls.from_torch(ref)
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([2, 6, 4]), enforce_sorted=False)
    out, state = mine(packed)
    ref_out, ref_state = ref(packed)
    assert torch.equal(out.batch_sizes, ref_out.batch_sizes)
    assert torch.equal(out.sorted_indices, ref_out.sorted_indices)
    torch.testing.assert_close(out.data, ref_out.data)
    torch.testing.assert_close(state, ref_state)
    # sequence 0 has length 2: its h_n is its output at step 1, unpacked from the padded run
    h = state[0] if cell == "lstm" else state
    alone, _ = mine(x[:2, :1])
    torch.testing.assert_close(h[-1, 0], alone[-1, 0])


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_unbatched_input_and_weights_round_trip(cell):
    mine_cls, torch_cls = CELLS[cell]
    mine = mine_cls(RecurrentConfig(3, 5, 2))
    ref = mine.to_torch()
    assert isinstance(ref, torch_cls)
    assert sum(p.numel() for p in mine.parameters()) == mine.config.n_params(mine.GATES)
    x = torch.randn(4, 3)
    torch.testing.assert_close(mine(x)[0], ref(x)[0])


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_dropout_between_layers_is_identity_in_eval_and_bias_false_works(cell):
    mine_cls, torch_cls = CELLS[cell]
    torch.manual_seed(1)
    ref = torch_cls(3, 4, num_layers=2, dropout=0.5, bias=False).eval()
    mine = mine_cls.from_torch(ref).eval()
    assert not any("bias" in n for n, _ in mine.named_parameters())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(mine(x)[0], ref(x)[0])
    mine.train()
    a, b = mine(x)[0], mine(x)[0]
    assert not torch.equal(a, b)  # dropout acts in training mode


def test_bad_input_raises_clear_errors():
    lstm = LSTM(RecurrentConfig(3, 4, 2))
    with pytest.raises(ValueError, match="features"):
        lstm(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="3-D"):
        lstm(torch.randn(5, 2, 3, 1))
    with pytest.raises(ValueError, match="pair"):
        lstm(torch.randn(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="initial state"):
        GRU(RecurrentConfig(3, 4, 2))(torch.randn(5, 2, 3), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="proj_size=2: projections exist for the LSTM only"):
        GRU(RecurrentConfig(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="nn.LSTM"):
        LSTM.from_torch(nn.GRU(3, 4))
    with pytest.raises(ValueError, match=">= 1"):
        RecurrentConfig(0, 4)
    with pytest.raises(ValueError, match="unknown recurrent preset"):
        preset("huge")
    with pytest.raises(ValueError, match="proj_size must be >= 0 and < hidden_size"):
        RecurrentConfig(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="no time steps"):
        lstm(torch.randn(0, 2, 3))


def test_presets_are_frozen_and_counted():
    cfg = PRESETS["zaremba_medium"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 1
    # Zaremba et al. 2014 medium: 2 x 650-unit LSTM layers, 2 * 4 * (650*650*2 + 2*650) weights
    assert cfg.n_params(4) == 2 * 4 * (650 * 650 * 2 + 2 * 650)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_sequence_model_manual_equals_torch(cell):
    torch.manual_seed(0)
    cfg = SequenceModelConfig(vocab_size=11, input_size=6, hidden_size=8, output_size=11, num_layers=2, cell=cell)
    a = SequenceModel(cfg)
    b = SequenceModel(dataclasses.replace(cfg, impl="manual"))
    b.load_state_dict(a.state_dict())
    ids = torch.randint(1, 11, (3, 7))
    lengths = torch.tensor([7, 2, 5])
    torch.testing.assert_close(a(ids, lengths), b(ids, lengths))
    last_a = SequenceModel(dataclasses.replace(cfg, head="last"))
    last_b = SequenceModel(dataclasses.replace(cfg, head="last", impl="manual"))
    last_b.load_state_dict(last_a.state_dict())
    torch.testing.assert_close(last_a(ids, lengths), last_b(ids, lengths))
    # head="last" with lengths = the per-step output at each sequence's last step
    per_step = a(ids, lengths)  # (B, T, O)
    head = SequenceModel(dataclasses.replace(cfg, head="last"))
    head.load_state_dict(a.state_dict())
    torch.testing.assert_close(head(ids, lengths), per_step[torch.arange(3), lengths - 1])
