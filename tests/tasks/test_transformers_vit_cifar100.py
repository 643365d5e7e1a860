"""6.10 vit_cifar100: the check passes; patches with rows and columns transposed, patches taken
in column-major order, a ViT without the class token (wrong parameter count) and a model that
does not learn are caught."""

import dataclasses

import torch
from torch import nn

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
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


def transposed_patches(x, P):
    B, C, H, W = x.shape
    p = x.unfold(2, P, P).unfold(3, P, P)  # (B, C, H/P, W/P, P, P)
    return p.permute(0, 2, 3, 1, 5, 4).reshape(B, -1, C * P * P)  # each patch read column by column


def column_major_patches(x, P):
    B, C, H, W = x.shape
    p = x.unfold(2, P, P).unfold(3, P, P)
    return p.permute(0, 3, 2, 1, 4, 5).reshape(B, -1, C * P * P)  # patches listed down the columns first


def _skip_training(cls):
    class Quick(cls):
        def _train(self, ctx, config):  # the failure under test comes before training
            raise AssertionError("training reached: the planted bug was not caught")

    return Quick


def test_transposed_patches_are_caught():
    class Wrong(Task):
        patchify = staticmethod(transposed_patches)

    expect_check_fails(_skip_training(Wrong), match="patch embedding")


def test_column_major_patch_order_is_caught():
    class Wrong(Task):
        patchify = staticmethod(column_major_patches)

    expect_check_fails(_skip_training(Wrong), match="patch embedding")


class MeanPooledViT(ViT):
    """Pools the patch tokens instead of reading a class token (no cls_token parameter)."""

    def __init__(self, config):
        super().__init__(config)
        del self.cls_token
        self.pos_embed = nn.Parameter(torch.zeros(1, config.n_patches, config.d_model))

    def tokens(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, x):
        h = self.tokens(x)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h.mean(1)))


def test_wrong_parameter_count_is_caught():
    class Wrong(Task):
        model_cls = MeanPooledViT

    expect_check_fails(_skip_training(Wrong), match="86,567,656")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="test accuracy")
