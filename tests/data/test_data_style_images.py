"""harness.data.style_images: square grey crops in [0, 1] at every side the presets use (gpu: 256)."""

import pytest

from harness.data.style_images import style_images


@pytest.mark.parametrize("side", [32, 64, 256])
def test_content_and_style_are_square_at_the_presets_sides(side):
    content, style = style_images(side)
    assert content.shape == style.shape == (1, 1, side, side)
    assert 0 <= float(content.min()) and float(content.max()) <= 1 and float(content.std()) > 0.01


def test_a_side_past_the_images_is_refused():
    with pytest.raises(ValueError, match="1..256"):
        style_images(257)
