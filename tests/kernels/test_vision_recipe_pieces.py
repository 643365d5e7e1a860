"""kernels.vision.augment.locate_flip_crop and models.resnet_cifar.scheduled_lrs (research.resnet_repro's checks),
kernels.vision.augment.crop_by_slicing (cnn.augmentation's)."""

import torch

from kernels.vision.augment import augment_batch, crop_by_slicing, crop_with_padding, locate_flip_crop
from models.resnet_cifar import HeCifarRecipe, lr_at, make_optimizer, scheduled_lrs


def test_locate_flip_crop_finds_each_augmentation_and_rejects_others():
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out, _ = augment_batch(x, torch.zeros(8), torch.Generator().manual_seed(1), padding=2, flip_p=0.5)
    found = locate_flip_crop(out, x, 2)
    assert None not in found and all(0 <= dy <= 4 and 0 <= dx <= 4 for _, dy, dx in found)
    assert locate_flip_crop(x.flip(-1), x, 0) == [(1, 0, 0)] * 8
    assert locate_flip_crop(x + 1, x, 2) == [None] * 8


def test_crop_by_slicing_is_the_batched_crop_and_knows_each_window():
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4)  # (N, C, H, W)
    offsets = torch.tensor([[0, 2], [1, 1]])  # image 1 uncropped (dy = dx = padding)
    got = crop_by_slicing(x, offsets, 1)
    assert torch.equal(got, crop_with_padding(x, offsets, 1))
    assert torch.equal(got[1], x[1])
    assert torch.equal(got[0, 0, 0], torch.tensor([0.0, 0.0, 0.0, 0.0]))  # the top padding row
    assert torch.equal(got[0, 0, 1], torch.tensor([1.0, 2.0, 3.0, 0.0]))  # shifted right by one, zero fill


def test_scheduled_lrs_follow_the_recipe_per_iteration():
    small = HeCifarRecipe().scaled(16)
    opt, sched = make_optimizer([torch.nn.Parameter(torch.zeros(1))], small)
    lrs = scheduled_lrs(opt, sched, 16)
    assert lrs.dtype == torch.float64 and lrs.shape == (16,)
    assert torch.allclose(lrs, torch.tensor([lr_at(small, s) for s in range(16)], dtype=torch.float64))
