"""The page's pictures as pixels: image grids, and the Compare picture (one row of images per
run, its label above it), drawn with PIL.

matplotlib drew it before (`labelled_grid`, as `cvaekit generate` writes): about 130 ms a
picture, one at a time (pyplot is not thread-safe), which under load was most of the
server's time. PIL draws the same rows in a few milliseconds, from any thread.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

GAP = 2  # white pixels between images, as the generate grid
LABEL_PX = 14  # the label's font size
INK = (31, 41, 55)
PER_ROW = 8  # a generate grid wraps after this many images


@functools.lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=LABEL_PX)  # Pillow's own TrueType font
    except (OSError, TypeError, ValueError):  # Pillow without FreeType: its bitmap font
        return ImageFont.load_default()


def pixel_grid(images: torch.Tensor, per_row: int = PER_ROW) -> np.ndarray:
    """Images [N, C, H, W] in [0, 1] as one RGB grid (white gaps of `GAP` pixels), at their own size."""
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=per_row, padding=GAP, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _row(images: torch.Tensor, scale: int) -> Image.Image:
    picture = Image.fromarray(pixel_grid(images, images.shape[0])).convert("RGB")
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def _fit(draw: ImageDraw.ImageDraw, label: str, width: int) -> str:
    """`label` cut with an ellipsis to `width` pixels."""
    if draw.textlength(label, font=font()) <= width:
        return label
    while label and draw.textlength(label + "…", font=font()) > width:
        label = label[:-1]
    return label + "…"


def labelled_rows(rows: list[torch.Tensor], labels: list[str]) -> np.ndarray:
    """Rows of images ([n, C, H, W] in [0, 1]) under their labels, as RGB pixels; small images
    scaled up by a whole factor (no blur) to about 64 px."""
    scale = max(1, 64 // rows[0].shape[-1])
    pictures = [_row(r, scale) for r in rows]
    width, line = max(max(p.width for p in pictures), 240), LABEL_PX + 6
    canvas = Image.new("RGB", (width, sum(p.height + line for p in pictures) + GAP), "white")
    draw, y = ImageDraw.Draw(canvas), 0
    for picture, label in zip(pictures, labels):
        draw.text((GAP, y + 2), _fit(draw, label, width - 2 * GAP), fill=INK, font=font())
        canvas.paste(picture, (0, y + line))
        y += line + picture.height
    return np.asarray(canvas)
