"""A content photo and a style texture for the style-transfer drill, from installed packages only.

Content: a grey crop of scikit-learn's ``china.jpg`` (``sklearn.datasets.load_sample_image``).
Style: scikit-image's brick texture (``skimage.data.brick``), or a crop of scikit-learn's
``flower.jpg`` when scikit-image is absent. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util

import torch


@functools.lru_cache(maxsize=1)
def style_images(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(content, style), each float32 (1, 1, side, side) in [0, 1] (grey: the mean of RGB).

    The content is every 4th pixel of china.jpg from row 100, column 200; the brick every 2nd
    pixel from the corner (flower.jpg: every 4th). Past the photos' edges (china.jpg is 427 x 640)
    the slices are cut short, so the content is square only for ``side`` <= 81.
    """
    from sklearn.datasets import load_sample_image

    def grey(a):
        return torch.from_numpy(a.astype("float32")).mean(-1) / 255  # (H, W, 3) -> (H, W) in [0, 1]

    content = grey(load_sample_image("china.jpg"))[100 : 100 + 4 * side : 4, 200 : 200 + 4 * side : 4]
    if importlib.util.find_spec("skimage"):
        import skimage.data

        style = torch.from_numpy(skimage.data.brick().astype("float32") / 255)[: 2 * side : 2, : 2 * side : 2]
    else:
        style = grey(load_sample_image("flower.jpg"))[: 4 * side : 4, : 4 * side : 4]
    return content[None, None].contiguous(), style[None, None].contiguous()  # (1, 1, side, side)
