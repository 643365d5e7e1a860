"""7.05 cyclegan: worked-example losses, least-squares GAN loss, the 50-image pool, PatchGAN shapes."""

from harness import REGISTRY
from harness.data.textures import texture_patches
from harness.testing import run_check

Task = REGISTRY.get("gans.cyclegan")


def test_check_passes():
    rec = run_check(Task)
    assert {"cycle loss (worked example)", "identity loss (worked example)", "image pool", "70x70 PatchGAN"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_texture_patches_are_seeded_and_in_range():
    a, b = texture_patches("brick", 3, 16, seed=1), texture_patches("brick", 3, 16, seed=1)
    assert a.shape == (3, 1, 16, 16) and (a == b).all() and a.min() >= -1 and a.max() <= 1
