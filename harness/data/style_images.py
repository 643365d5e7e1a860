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

    The content is every 4th pixel of china.jpg (427 x 640) from row 100, column 200, the brick
    texture (512 x 512) every 2nd pixel from the corner, flower.jpg every 4th: strides shrink where
    ``side`` would run past an edge (side 256: every pixel of china.jpg), so both are square.

    Raises:
        ValueError: ``side`` over 256 (the brick texture at stride 2 and china.jpg's crop end there).
    """
    if not 1 <= side <= 256:
        raise ValueError(f"style_images: side must be in 1..256 pixels, got {side}")
    from sklearn.datasets import load_sample_image

    def grey(a):
        return torch.from_numpy(a.astype("float32")).mean(-1) / 255  # (H, W, 3) -> (H, W) in [0, 1]

    def crop(img, top, left, step):  # every step-th pixel of a side x side window, stride cut to fit
        step = min(step, (img.shape[0] - top) // side, (img.shape[1] - left) // side)
        return img[top : top + step * side : step, left : left + step * side : step]

    content = crop(grey(load_sample_image("china.jpg")), 100, 200, 4)
    if importlib.util.find_spec("skimage"):
        import skimage.data

        style = crop(torch.from_numpy(skimage.data.brick().astype("float32") / 255), 0, 0, 2)
    else:
        style = crop(grey(load_sample_image("flower.jpg")), 0, 0, 4)
    return content[None, None].contiguous(), style[None, None].contiguous()  # (1, 1, side, side)
