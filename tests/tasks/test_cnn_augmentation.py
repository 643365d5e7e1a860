"""4.04 augmentation: the check passes; an augmentation that flips labels, one that ignores
the seed, a vertical "flip", a crop off by one pixel and a crop without padding are caught."""

import types

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.vision import augment

Task = REGISTRY.get("cnn.augmentation")


def _with(**replace):
    return type("Wrong", (Task,), {"ops": types.SimpleNamespace(**{**vars(augment), **replace})})


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"no_augment", "augment"}


def test_augmentation_that_flips_labels_is_caught():
    def flips_labels(x, y, g, padding=4, flip_p=0.5):
        out, flipped = augment.random_flip(x, g, flip_p)
        return out, torch.where(flipped.to(y.device), 9 - y, y)  # "mirror" the class too

    expect_check_fails(_with(augment_batch=flips_labels), match="labels")


def test_unseeded_augmentation_is_caught():
    def global_rng(x, y, g, padding=4, flip_p=0.5):
        return augment.augment_batch(x, y, torch.Generator().manual_seed(torch.seed()), padding=padding, flip_p=flip_p)

    expect_check_fails(_with(augment_batch=global_rng), match="same seed")


def test_vertical_flip_is_caught():
    expect_check_fails(_with(hflip=lambda x: x.flip(-2)), match="mirror")


def test_crop_off_by_one_is_caught():
    def shifted(images, offsets, padding, fill=0.0):
        out = augment.crop_with_padding(images, offsets, padding, fill)
        return torch.roll(out, 1, dims=-1)

    expect_check_fails(_with(crop_with_padding=shifted), match="pad-then-slice")


def test_crop_without_padding_is_caught():
    def no_pad(images, offsets, padding, fill=0.0):
        h, w = images.shape[-2:]
        return F.interpolate(images[..., padding : h - padding, padding : w - padding], size=(h, w))

    expect_check_fails(_with(crop_with_padding=no_pad), match="pad-then-slice")
