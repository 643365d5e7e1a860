"""Pictures in a card: PNG images and heatmaps a task recorded (``harness.images``).

A task entry may carry ``"images": [...]``, each either

* ``{"name", "caption", "kind": "image", "png_b64", "width", "height"}``: shown as an
  inline ``data:image/png`` image (the page's policy allows ``img-src data:``). Small
  pictures (an 8x8 digit, a 16x16 Grad-CAM map) are scaled up by a whole factor to
  about :data:`TARGET_PX` pixels with ``image-rendering: pixelated``, so each stored pixel
  stays a crisp square instead of a blur;
* ``{"name", "caption", "kind": "heatmap", "z": [[...]], "x", "y", "x_label", "y_label"}``:
  a plotly heatmap (:func:`harness.report.figures.heatmap`).

Anything else (an unknown kind, a PNG field that is not base64) is named in a sentence,
never dropped silently.
"""

from __future__ import annotations

import re
from typing import Any

from harness.report import figures as F
from harness.report.html import esc, para

#: Displayed size a small picture is scaled up towards, in CSS pixels.
TARGET_PX = 256
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def display_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) on the page: a whole-number upscale to about TARGET_PX, never a downscale."""
    side = max(width, height, 1)
    k = max(1, TARGET_PX // side)
    return width * k, height * k


def image_html(p: dict[str, Any]) -> str:
    data = str(p.get("png_b64") or "")
    name = str(p.get("name") or "image")
    if not data or not _B64.match(data):
        return para(f"picture {name!r}: the record holds no valid base64 PNG.", "warn")
    try:
        w, h = int(p.get("width") or 0), int(p.get("height") or 0)
    except (TypeError, ValueError):
        w = h = 0
    size = ""
    if w > 0 and h > 0:
        dw, dh = display_size(w, h)
        size = f' width="{dw}" height="{dh}"'
    small = " pixelated" if 0 < max(w, h) < TARGET_PX else ""
    return (
        f'<figure class="pic"><img class="pic{small}" src="data:image/png;base64,{data}" alt="{esc(name)}"{size}>'
        f"<figcaption><b>{esc(name)}</b>"
        + (f": {esc(p.get('caption'))}" if p.get("caption") else "")
        + (f' <span class="muted">({w}×{h} px)</span>' if w and h else "")
        + "</figcaption></figure>"
    )


def heatmap_html(p: dict[str, Any], figs: F.Figures) -> str:
    name = str(p.get("name") or "heatmap")
    fig = F.heatmap(
        name,
        p.get("z") or [],
        x=p.get("x"),
        y=p.get("y"),
        x_label=str(p.get("x_label") or ""),
        y_label=str(p.get("y_label") or ""),
    )
    cap = f'<p class="caption"><b>{esc(name)}</b>: {esc(p.get("caption"))}</p>' if p.get("caption") else ""
    return '<div class="heatmap">' + figs.embed(fig, empty=f"Heatmap {name!r} has no finite values.") + cap + "</div>"


def pictures_html(images: list[dict[str, Any]], figs: F.Figures) -> str:
    """The card's pictures block: images in a flowing row, heatmaps one per line."""
    if not images:
        return ""
    imgs, maps = [], []
    for p in images:
        kind = p.get("kind") if isinstance(p, dict) else None
        if kind == "image":
            imgs.append(image_html(p))
        elif kind == "heatmap":
            maps.append(heatmap_html(p, figs))
        else:
            name = p.get("name") if isinstance(p, dict) else p
            imgs.append(para(f"picture {name!r} has kind {kind!r}, which this report cannot show.", "warn"))
    out = ["<h4>pictures</h4>"]
    if imgs:
        out.append('<div class="pics">' + "".join(imgs) + "</div>")
    out += maps
    return "".join(out)
