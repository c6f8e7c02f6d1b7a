"""Caption fidelity on `shapes_captions`: a checker that knows how the data set draws looks
at each shape's colour, kind, size and place, and says whether an image shows its caption."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from cvaekit.components.datasets.shapes import COLOURS, Scene, parse_caption, side_of
from cvaekit.components.metrics.caption_fidelity import caption_fidelity
from cvaekit.evaluation.context import EvalContext
from cvaekit.core.guidance import check_guidance
from cvaekit.recipe import NonNegativeFloat, PositiveInt

_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32)
_PALETTE = _PALETTE / np.linalg.norm(_PALETTE, axis=1, keepdims=True)


def colour_masks(image: torch.Tensor, ink: float = 0.3, agree: float = 0.9) -> np.ndarray:
    """[len(COLOURS), H, W] bool: pixels bright enough whose hue is nearest each palette colour."""
    pixels = image.detach().cpu().numpy().astype(np.float32)
    pixels = pixels.reshape(3, -1).T / (255 if image.dtype == torch.uint8 else 1)  # [HW, 3]
    cos = (pixels / np.maximum(np.linalg.norm(pixels, axis=1, keepdims=True), 1e-6)) @ _PALETTE.T
    label = cos.argmax(axis=1)
    keep = (pixels.max(axis=1) >= ink) & (cos.max(axis=1) >= agree)
    masks = (label[None] == np.arange(len(COLOURS))[:, None]) & keep[None]
    return masks.reshape(len(COLOURS), *image.shape[1:])


def _templates(h: int, w: int) -> dict[str, np.ndarray]:
    """Filled circle, square and upward triangle in an h x w box (pixel centres)."""
    y = (np.arange(h) + 0.5)[:, None] / h
    x = (np.arange(w) + 0.5)[None, :] / w
    return {"circle": (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25,
            "square": np.ones((h, w), dtype=bool),
            "triangle": np.abs(x - 0.5) <= y / 2}


@dataclass
class Found:
    kind: str
    side: int
    centre: tuple[float, float]  # (y, x)


def find_shape(mask: np.ndarray, min_pixels: int) -> Found | None:
    """The largest blob of one colour, classified by its best-matching template (IoU)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = ndimage.sum(mask, labels, index=range(1, n + 1))
    blob = labels == (int(np.argmax(sizes)) + 1)
    if blob.sum() < min_pixels:
        return None
    ys, xs = np.nonzero(blob)
    crop = blob[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    ious = {k: (crop & t).sum() / (crop | t).sum() for k, t in _templates(*crop.shape).items()}
    return Found(max(ious, key=ious.get), int(max(crop.shape)), (float(ys.mean()), float(xs.mean())))


def failure(caption: str | Scene, image: torch.Tensor) -> str | None:
    """Why `image` ([3, H, W], uint8 or float in [0, 1]) does not show what `caption` asks: the
    first of `missing` (a shape's colour is not there), `kind`, `size` or `relation` (every
    shape is right, a relation between their centres is not); None when it does."""
    scene = parse_caption(caption) if isinstance(caption, str) else caption
    size = image.shape[-1]
    masks = colour_masks(image)
    names = list(COLOURS)
    small, large = side_of("small", size), side_of("large", size)
    found = {}
    for colour, shape in scene.shapes.items():
        got = find_shape(masks[names.index(colour)], min_pixels=max(4, small * small // 4))
        if got is None:
            return "missing"
        if got.kind != shape.kind:
            return "kind"
        if shape.size and (got.side >= (small + large) / 2) != (shape.size == "large"):
            return "size"
        found[colour] = got
    margin = size / 8
    for a, relation, b in scene.relations:
        (ya, xa), (yb, xb) = found[a].centre, found[b].centre
        ok = {"above": ya < yb - margin, "below": ya > yb + margin,
              "to the left of": xa < xb - margin, "to the right of": xa > xb + margin}[relation]
        if not ok:
            return "relation"
    return None


def check(caption: str | Scene, image: torch.Tensor) -> bool:
    """Does `image` show what `caption` asks: each shape in its colour, of its kind and size,
    and each relation between their centres?"""
    return failure(caption, image) is None


def fidelity(captions: list[str], images: torch.Tensor) -> float:
    """Share of images that `check` accepts for their caption."""
    return sum(check(c, im) for c, im in zip(captions, images)) / max(len(captions), 1)


class ShapesFidelity:
    """Caption fidelity on shapes_captions: the share of generated images that match their caption.

    A checker that knows how the data set draws looks at shapes, colours, sizes and places.
    It also scores the same images against shuffled captions (what a caption-ignoring model
    would score) and the real test images (the ceiling).

    n_captions: how many test captions (the first ones) get one generated image each.
    guidance: the guidance scale of the generated images (1: none; above 1 needs a run trained with train.cond_dropout; reported as fidelity_g2 and so on)."""

    def __init__(self, n_captions: PositiveInt = 200, guidance: NonNegativeFloat = 1.0):
        self.n_captions, self.guidance = n_captions, check_guidance(guidance)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        return caption_fidelity(ctx, self.n_captions, parse_caption, fidelity, "shapes_fidelity", "shapes_captions",
                                self.guidance)
