"""6.10 vit_cifar100: the check passes (its mutants, transposed or column-major patches, a ViT without the class
token and a model that does not learn: test_mutants.py); the hand patch embedding matches the model's."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.vit import ViT, patch_embed_by_hand, preset

Task = REGISTRY.get("transformers.vit_cifar100")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    rows = {r["component"]: r["parameters"] for r in rec.tables[0]["rows"]}
    assert rows == {
        "patch_embed": 590_592,
        "cls_token": 768,
        "pos_embed": 151_296,
        "blocks": 85_054_464,
        "norm": 1_536,
        "head": 769_000,
        "total": 86_567_656,
    }
    assert rec.metrics["final_accuracy"] >= 0.7


def test_patch_embed_by_hand_matches_the_model():
    m = ViT(preset("tiny"))
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(
        patch_embed_by_hand(x, m.patch_embed.weight, m.patch_embed.bias),
        m.patch_embed(x).flatten(2).transpose(1, 2),
        rtol=1e-5,
        atol=1e-5,
    )
