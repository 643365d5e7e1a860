"""research.vit_cifar100: the schedule formula, label smoothing, AdamW groups (mutants: test_mutants.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import run_check
from models.vit import ViT, preset
from models.vit_recipe import adamw_groups, make_scheduler, smoothed_cross_entropy, warmup_cosine

Task = REGISTRY.get("research.vit_cifar100")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"LR = warmup then cosine, every step", "AdamW no-decay group", "trains above chance"} <= set(rec.checks)


def test_warmup_cosine_at_given_steps():
    lr = lambda s: warmup_cosine(s, 100, 10, 1.0, 0.1)  # noqa: E731
    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)  # linear warmup, full LR at step W-1
    assert lr(10) == pytest.approx(1.0) and lr(55) == pytest.approx(0.55)  # cosine midpoint: (base + min) / 2
    assert lr(99) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 89 / 90)) / 2)
    with pytest.raises(ValueError, match="warmup"):
        warmup_cosine(0, 10, 10, 1.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched, got = make_scheduler(opt, 20, 4), []
    for _ in range(20):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert got == pytest.approx([warmup_cosine(s, 20, 4, 0.5) for s in range(20)], rel=1e-12)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_equals_pytorch(eps):
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, 100, generator=g), torch.randint(0, 100, (16,), generator=g)
    assert torch.allclose(smoothed_cross_entropy(logits, y, eps), F.cross_entropy(logits, y, label_smoothing=eps))


def test_adamw_groups_on_vit():
    model = ViT(preset("tiny"))
    decay, no = adamw_groups(model, 0.05)
    assert {"cls_token", "pos_embed", "norm.weight", "head.bias"} <= set(no["names"])
    assert {"patch_embed.weight", "head.weight", "blocks.0.attn.q.weight"} <= set(decay["names"])
    assert all(p.ndim >= 2 for p in decay["params"]) and (decay["weight_decay"], no["weight_decay"]) == (0.05, 0.0)
    assert len(decay["params"]) + len(no["params"]) == len(list(model.parameters()))
