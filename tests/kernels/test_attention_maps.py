"""kernels.layers.attention_maps: the recorded weights are softmax rows, and the last layer's map."""

import pytest
import torch
from torch import nn

from kernels.layers.attention_maps import last_layer_map, record_attention
from models.transformer import EncoderClassifier, preset


def test_last_layer_map_is_the_last_recorded_call_mean_over_heads():
    torch.manual_seed(0)
    model = EncoderClassifier(preset("tiny", max_len=16), vocab_size=20, num_classes=2).eval()
    ids = torch.randint(1, 20, (2, 7))  # (B, T)
    with torch.no_grad(), record_attention(model) as maps:
        model(ids)
    got = last_layer_map(model, ids)
    assert got.shape == (7, 7)
    torch.testing.assert_close(got, maps[-1][0].mean(0))
    torch.testing.assert_close(got.sum(-1), torch.ones(7))  # each query's weights sum to 1


def test_last_layer_map_refuses_a_model_without_attention():
    with pytest.raises(ValueError, match="sdpa"):
        last_layer_map(nn.Linear(3, 3), torch.zeros(1, 3))
