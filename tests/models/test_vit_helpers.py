"""models.vit helpers: parameters per component, the class token's attention grid, block FLOPs."""

import torch

from models.vit import ViT, block_flops, class_token_attention, params_by_component, preset


def test_params_by_component_adds_up():
    m = ViT(preset("tiny"))
    groups = params_by_component(m)
    assert list(groups) == ["cls_token", "pos_embed", "patch_embed", "blocks", "norm", "head"]
    assert sum(groups.values()) == sum(p.numel() for p in m.parameters())
    assert groups["cls_token"] == m.config.d_model


def test_class_token_attention_is_a_distribution_over_the_patch_grid():
    torch.manual_seed(0)
    m = ViT(preset("tiny")).eval()
    grid = class_token_attention(m, torch.randn(1, 1, 16, 16))
    assert grid.shape == (4, 4)  # 16 / 4 patches a side
    assert 0 < float(grid.sum()) < 1  # the class token also attends to itself, left out of the grid


def test_block_flops_of_vit_b16():
    # 197 tokens, 12 layers, E = 768, M = 3072: 2 * 197 * 12 * (4 E^2 + 2 E M + 2 * 197 E)
    assert block_flops(preset("b16")) == 2 * 197 * 12 * (4 * 768**2 + 2 * 768 * 3072 + 2 * 197 * 768)
