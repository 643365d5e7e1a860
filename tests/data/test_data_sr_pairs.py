"""harness.data.textures.sr_pairs / sr_split: grey crops of scikit-learn's sample photos and their x4 downscale."""

import pytest
import torch

from harness.data.textures import sr_pairs, sr_split


def test_sr_pairs_are_seeded_in_range_and_downscaled():
    low, high = sr_pairs("china.jpg", 3, 16, seed=1)
    again, _ = sr_pairs("china.jpg", 3, 16, seed=1)
    assert high.shape == (3, 1, 16, 16) and low.shape == (3, 1, 4, 4) and torch.equal(low, again)
    assert high.min() >= -1 and high.max() <= 1
    # the low-resolution image is a smoothed downscale: close to 4x4 block means of the crop
    assert float((low - torch.nn.functional.avg_pool2d(high, 4)).abs().mean()) < 0.1


def test_sr_split_trains_on_china_and_holds_out_flower():
    (lo, hi), (test_lo, test_hi) = sr_split(8, seed=0)
    assert hi.shape == (1024, 1, 8, 8) and test_hi.shape == (256, 1, 8, 8) and test_lo.shape == (256, 1, 2, 2)
    assert torch.equal(hi, sr_pairs("china.jpg", 1024, 8, 0)[1])


@pytest.mark.parametrize(("name", "side"), [("lena.jpg", 16), ("china.jpg", 18), ("china.jpg", 500)])
def test_sr_pairs_reject_unknown_photos_and_bad_sides(name, side):
    with pytest.raises(ValueError, match="sr_pairs"):
        sr_pairs(name, 1, side)
