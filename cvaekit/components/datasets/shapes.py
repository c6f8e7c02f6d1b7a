"""Captioned coloured shapes, drawn on the fly: the offline stand-in for COCO.

Each image holds 1 to `max_shapes` shapes (circle, square, triangle), each in its own cell
of a 2x2 grid, each in a different colour, small or large. Its captions say what is drawn
and where, in a small grammar::

    caption := clause (" and " clause)*
    clause  := shape [relation shape]
    shape   := "a " [size " "] colour " " kind        e.g. "a small red circle"
    relation:= "above" | "below" | "to the left of" | "to the right of"

so the words decide what must be drawn, and the `shapes_fidelity` metric can tell whether an
image shows what a caption asks. Colours are unique within an image, so a
colour names one shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw

from cvaekit.core.data import DataSource, Split
from cvaekit.errors import RecipeError, UnknownConditionError
from cvaekit.recipe import PositiveInt

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 240),
           "yellow": (230, 220, 40), "cyan": (40, 210, 220), "magenta": (220, 40, 220)}
KINDS = ("circle", "square", "triangle")
SIZES = {"small": 0.45, "large": 0.85}  # side as a share of a grid cell (half the image)
RELATIONS = {"above": "below", "below": "above", "to the left of": "to the right of",
             "to the right of": "to the left of"}

_NP = rf"a (?:({'|'.join(SIZES)}) )?({'|'.join(COLOURS)}) ({'|'.join(KINDS)})"
_CLAUSE = re.compile(rf"{_NP}(?: ({'|'.join(RELATIONS)}) {_NP})?")


# ---------------------------------------------------------------------------- scenes

@dataclass(frozen=True)
class Shape:
    colour: str
    kind: str
    size: str | None = None  # None: the caption does not say

    def phrase(self, with_size: bool = True) -> str:
        size = f"{self.size} " if with_size and self.size else ""
        return f"a {size}{self.colour} {self.kind}"


@dataclass
class Scene:
    """What a caption asks for: shapes by colour, and relations between them by colour."""

    shapes: dict[str, Shape] = field(default_factory=dict)
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (colour, relation, colour)


def parse_caption(text: str) -> Scene:
    """A caption of the shapes grammar as a Scene; anything else is an UnknownConditionError."""
    scene = Scene()
    for clause in text.strip().lower().rstrip(".").split(" and "):
        m = _CLAUSE.fullmatch(clause.strip())
        if m is None:
            raise UnknownConditionError(
                f"'{text}' is not a shapes caption: '{clause}' should read like 'a small red circle' "
                f"or 'a red circle above a large blue square'. Colours: {', '.join(COLOURS)}; "
                f"shapes: {', '.join(KINDS)}; sizes: {', '.join(SIZES)}; relations: {', '.join(RELATIONS)}.")
        size, colour, kind, relation, size2, colour2, kind2 = m.groups()
        _add(scene, Shape(colour, kind, size), text)
        if relation:
            _add(scene, Shape(colour2, kind2, size2), text)
            scene.relations.append((colour, relation, colour2))
    return scene


def _add(scene: Scene, shape: Shape, text: str) -> None:
    old = scene.shapes.get(shape.colour)
    if old and (old.kind != shape.kind or (old.size and shape.size and old.size != shape.size)):
        raise UnknownConditionError(f"'{text}' names two different {shape.colour} shapes; "
                                    f"each colour stands for one shape.")
    scene.shapes[shape.colour] = Shape(shape.colour, shape.kind, shape.size or (old.size if old else None))


# ---------------------------------------------------------------------------- drawing

def _cells(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    return [divmod(int(i), 2) for i in rng.choice(4, size=n, replace=False)]  # (row, col)


def _relation(a: tuple[int, int], b: tuple[int, int], rng: np.random.Generator) -> str:
    """A true relation of cell a to cell b (distinct cells), picked at random."""
    options = ([("above" if a[0] < b[0] else "below")] if a[0] != b[0] else []) + \
              ([("to the left of" if a[1] < b[1] else "to the right of")] if a[1] != b[1] else [])
    return options[rng.integers(len(options))]


def side_of(size: str, image_size: int) -> int:
    return max(3, round(SIZES[size] * image_size / 2))


def draw_scene(draw: ImageDraw.ImageDraw, shape: Shape, cell: tuple[int, int], image_size: int,
               rng: np.random.Generator) -> None:
    cell_px = image_size // 2
    side = side_of(shape.size, image_size)
    free = cell_px - side
    x0 = cell[1] * cell_px + int(rng.integers(free + 1))
    y0 = cell[0] * cell_px + int(rng.integers(free + 1))
    x1, y1 = x0 + side - 1, y0 + side - 1
    colour = COLOURS[shape.colour]
    if shape.kind == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif shape.kind == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    else:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=colour)


def make_image(rng: np.random.Generator, image_size: int, max_shapes: int) -> tuple[np.ndarray, list[str]]:
    """One image [H, W, 3] uint8 and its captions (the first is the full one)."""
    n = int(rng.integers(1, max_shapes + 1))
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    shapes = [Shape(str(c), KINDS[rng.integers(len(KINDS))], list(SIZES)[rng.integers(len(SIZES))])
              for c in colours]
    cells = _cells(n, rng)
    image = Image.new("RGB", (image_size, image_size))
    draw = ImageDraw.Draw(image)
    for shape, cell in zip(shapes, cells):
        draw_scene(draw, shape, cell, image_size, rng)
    return np.asarray(image), _captions(shapes, cells, rng)


def _captions(shapes: list[Shape], cells: list[tuple[int, int]], rng) -> list[str]:
    """Several phrasings of one scene: full, the relations turned round, without sizes."""
    if len(shapes) == 1:
        return [shapes[0].phrase(), shapes[0].phrase(False)]
    clauses = [(0, _relation(cells[0], cells[1], rng), 1)]
    if len(shapes) == 3:
        other = int(rng.integers(2))
        clauses.append((2, _relation(cells[2], cells[other], rng), other))

    def say(clauses, sizes=True):
        return " and ".join(f"{shapes[a].phrase(sizes)} {rel} {shapes[b].phrase(sizes)}" for a, rel, b in clauses)

    turned = [(b, RELATIONS[rel], a) for a, rel, b in clauses][::-1]
    return [say(clauses), say(turned), say(clauses, sizes=False)]


def make_split(n: int, image_size: int, max_shapes: int, seed: int, caption: str) -> Split:
    rng = np.random.default_rng(seed)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        images[i], caps = make_image(rng, image_size, max_shapes)
        captions.append(caps)
    return Split(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), captions, caption)


def shapes_captions(image_size: int = 32, n_train: PositiveInt = 10000, n_test: PositiveInt = 1000, seed: int = 0,
                    max_shapes: int = 3, caption: Literal["random", "first"] = "random") -> DataSource:
    """Synthetic coloured shapes with captions, such as "a small red circle above a large blue square".

    Deterministic for a seed; needs no download.

    image_size: the side of the square images, in pixels (at least 16).
    n_train: images in the training split.
    n_test: images in the test split.
    seed: draws the shapes, their colours, sizes and places, and the captions' wording.
    max_shapes: the most shapes in an image, 1 to 3 (each image holds 1 to max_shapes).
    caption: the caption a batch uses: 'random' (any of its phrasings) or 'first' (the full one)."""
    if image_size < 16:
        raise RecipeError(f"'image_size' for shapes_captions must be at least 16, got {image_size}.")
    if not 1 <= max_shapes <= 3:
        raise RecipeError(f"'max_shapes' must be 1, 2 or 3 (one shape per cell of a 2x2 grid, "
                          f"at most three so relations stay simple), got {max_shapes}.")
    if n_train < 1 or n_test < 1:
        raise RecipeError(f"'n_train' and 'n_test' must be positive, got {n_train} and {n_test}.")
    train = make_split(n_train, image_size, max_shapes, seed * 2 + 1, caption)
    test = make_split(n_test, image_size, max_shapes, seed * 2 + 2, caption)
    return DataSource(train, test)
