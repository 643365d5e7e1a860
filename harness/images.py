"""Pictures in run records: small PNGs and quantised heatmaps, under a size budget.

People would rather look than read at a Grad-CAM map, an augmented sample, an attention
map or a grid of generated digits. A task records them with ``ctx.image`` /
``ctx.heatmap`` (``harness.context``); they travel in the run record as

* ``{"name", "caption", "kind": "image", "png_b64", "width", "height"}``: an 8-bit PNG
  (grey or RGB) encoded by Pillow, base64 text;
* ``{"name", "caption", "kind": "heatmap", "z", "x", "y", "x_label", "y_label"}``: values
  rounded to 3 significant digits, at most :data:`MAX_HEATMAP` cells a side.

Run records are committed, one per run, so they stay compact: a picture is at most
:data:`MAX_SIDE` pixels a side (larger ones are downsampled) and a task's pictures at most
:data:`RECORD_BUDGET_BYTES` together (``ctx`` drops the rest with a warning).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

#: Longest side of a stored picture, in pixels (the report scales small ones up).
MAX_SIDE = 256
#: Most cells per side of a stored heatmap.
MAX_HEATMAP = 128
#: Bytes of pictures (base64 PNG text and heatmap JSON) one task may put in a record.
RECORD_BUDGET_BYTES = 256 * 1024


def _as_tensor(x: Any) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t.detach().to("cpu", torch.float32)


def make_grid(batch: torch.Tensor, nrow: int | None = None, pad: int = 1) -> torch.Tensor:
    """Lay out (N, C, H, W) as one (C, rows*(H+pad)+pad, nrow*(W+pad)+pad) image, 1-pixel gaps.

    Gaps take the batch's maximum value so that tiles stand apart on a dark background.
    """
    n, c, h, w = batch.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    fill = float(batch.max()) if batch.numel() else 0.0
    grid = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), fill, dtype=batch.dtype)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = batch[i]
    return grid


def to_uint8(img: Any, *, vmin: float | None = None, vmax: float | None = None, nrow: int | None = None):
    """An (H, W) or (H, W, 3) uint8 array from a tensor (see :func:`encode_image` for shapes).

    Raises:
        ValueError: a shape that is not an image or a batch of images; channels not 1 or 3.
    """
    t = _as_tensor(img)
    if t.dim() == 4:  # (N, C, H, W) -> grid (C, H', W')
        t = make_grid(t, nrow)
    if t.dim() == 2:
        t = t[None]  # (1, H, W)
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(
            f"image of shape {tuple(_as_tensor(img).shape)}: expected (H, W), (C, H, W) or (N, C, H, W) with C = 1 or 3"
        )
    lo = float(t.min()) if vmin is None else vmin
    hi = float(t.max()) if vmax is None else vmax
    t = ((t - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1).nan_to_num(0.0)
    h, w = t.shape[-2:]
    if max(h, w) > MAX_SIDE:  # area-average down so the record stays small
        scale = MAX_SIDE / max(h, w)
        t = F.interpolate(t[None], size=(max(1, int(h * scale)), max(1, int(w * scale))), mode="area")[0]
    arr = (t * 255).round().to(torch.uint8)  # (C, H, W)
    return arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).contiguous().numpy()


def encode_image(
    name: str,
    img: Any,
    *,
    caption: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    nrow: int | None = None,
) -> dict[str, Any]:
    """A record entry holding ``img`` as a base64 PNG.

    Args:
        img: (H, W), (C, H, W) with C in {1, 3}, or (N, C, H, W) laid out as a grid;
            float values mapped from [vmin, vmax] (default: the data's own range) to 0..255.
    """
    from PIL import Image

    arr = to_uint8(img, vmin=vmin, vmax=vmax, nrow=nrow)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    h, w = arr.shape[:2]
    return {
        "name": name,
        "caption": caption,
        "kind": "image",
        "png_b64": base64.b64encode(buf.getvalue()).decode("ascii"),
        "width": int(w),
        "height": int(h),
    }


def _sig3(v: float) -> float | None:
    return float(f"{v:.3g}") if math.isfinite(v) else None


def encode_heatmap(
    name: str,
    z: Any,
    *,
    x: Sequence[Any] | None = None,
    y: Sequence[Any] | None = None,
    x_label: str = "",
    y_label: str = "",
    caption: str = "",
) -> dict[str, Any]:
    """A record entry holding a 2-D array (rows = y, columns = x) for a heatmap.

    Raises:
        ValueError: ``z`` is not 2-D, or ``x``/``y`` do not match its columns/rows.
    """
    t = _as_tensor(z)
    if t.dim() != 2:
        raise ValueError(f"heatmap {name!r}: expected a 2-D array, got shape {tuple(t.shape)}")
    rows, cols = t.shape
    if x is not None and len(x) != cols:
        raise ValueError(f"heatmap {name!r}: {len(x)} x labels for {cols} columns")
    if y is not None and len(y) != rows:
        raise ValueError(f"heatmap {name!r}: {len(y)} y labels for {rows} rows")
    if rows > MAX_HEATMAP or cols > MAX_HEATMAP:  # average-pool down; labels no longer match cells
        t = F.adaptive_avg_pool2d(t[None, None], (min(rows, MAX_HEATMAP), min(cols, MAX_HEATMAP)))[0, 0]
        x = None if cols > MAX_HEATMAP else x
        y = None if rows > MAX_HEATMAP else y
    return {
        "name": name,
        "caption": caption,
        "kind": "heatmap",
        "z": [[_sig3(float(v)) for v in row] for row in t.tolist()],
        "x": [str(v) for v in x] if x is not None else None,
        "y": [str(v) for v in y] if y is not None else None,
        "x_label": x_label,
        "y_label": y_label,
    }


def entry_bytes(entry: dict[str, Any]) -> int:
    """Bytes an entry adds to the run record (its JSON text)."""
    return len(json.dumps(entry, separators=(",", ":")))
