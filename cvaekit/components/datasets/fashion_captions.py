"""Fashion-MNIST items placed on a canvas, with captions that say what is where: a caption
benchmark on real images, built the way alignDRAW built MNIST with captions (Mansimov et al.,
2016), offline from the Fashion-MNIST files.

Each 64x64 grey canvas holds one or two items (28x28, of different classes), each in its own
cell of a 2x2 grid. Captions, in a small grammar::

    one item:   "a sneaker at the top right"
    two items:  "a sneaker to the left of a bag"    (relation: above, below, to the left of,
                                                     to the right of)

The `fashion_fidelity` metric reads a picture back with the Fashion-MNIST judge, one cell at a
time, and checks the items and their places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.core.data import DataSource, Split
from cvaekit.errors import RecipeError, UnknownConditionError
from cvaekit.recipe import PositiveInt

CANVAS, CELL, ITEM = 64, 32, 28
OFFSET = (CELL - ITEM) // 2  # an item sits centred in its cell
WORDS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
PLACES = {(0, 0): "at the top left", (0, 1): "at the top right", (1, 0): "at the bottom left",
          (1, 1): "at the bottom right"}
RELATIONS = ("above", "below", "to the left of", "to the right of")
_ITEM = rf"an? ({'|'.join(map(re.escape, WORDS))})"
_ONE = re.compile(rf"{_ITEM} ({'|'.join(PLACES.values())})")
_TWO = re.compile(rf"{_ITEM} ({'|'.join(RELATIONS)}) {_ITEM}")


@dataclass(frozen=True)
class Layout:
    """What a caption asks: item classes (label ids) and either a cell or a relation."""

    items: tuple[int, ...]
    cell: tuple[int, int] | None = None  # one item: its (row, col)
    relation: str | None = None  # two items: the first's relation to the second


def article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def parse_caption(text: str) -> Layout:
    """A fashion_captions caption as a Layout; anything else is an UnknownConditionError."""
    clean = text.strip().lower().rstrip(".")
    if m := _ONE.fullmatch(clean):
        cell = next(c for c, p in PLACES.items() if p == m.group(2))
        return Layout((WORDS.index(m.group(1)),), cell=cell)
    if m := _TWO.fullmatch(clean):
        return Layout((WORDS.index(m.group(1)), WORDS.index(m.group(3))), relation=m.group(2))
    raise UnknownConditionError(
        f"'{text}' is not a fashion_captions caption: it should read like 'a sneaker at the top right' "
        f"or 'a sneaker to the left of a bag'. Items: {', '.join(WORDS)}; places: "
        f"{', '.join(PLACES.values())}; relations: {', '.join(RELATIONS)}.")


def relation_holds(a: tuple[int, int], relation: str, b: tuple[int, int]) -> bool:
    """Is cell `a` in `relation` to cell `b`?"""
    return {"above": a[0] < b[0], "below": a[0] > b[0],
            "to the left of": a[1] < b[1], "to the right of": a[1] > b[1]}[relation]


def _captions(labels: list[int], cells: list[tuple[int, int]], rng: np.random.Generator) -> list[str]:
    if len(labels) == 1:
        return [f"{article(WORDS[labels[0]])} {PLACES[cells[0]]}"]
    out = []
    for (la, ca), (lb, cb) in (((labels[0], cells[0]), (labels[1], cells[1])),
                               ((labels[1], cells[1]), (labels[0], cells[0]))):
        true = [r for r in RELATIONS if relation_holds(ca, r, cb)]
        out.append(f"{article(WORDS[la])} {true[rng.integers(len(true))]} {article(WORDS[lb])}")
    return out


def make_split(source: Split, n: int, max_items: int, seed: int, caption: str) -> Split:
    """`n` canvases from the items of `source` (a labelled Fashion-MNIST split)."""
    rng = np.random.default_rng(seed)
    items, labels = source.images.numpy()[:, 0], source.conditions.numpy()
    canvases = np.zeros((n, 1, CANVAS, CANVAS), dtype=np.uint8)
    captions = []
    for i in range(n):
        k = int(rng.integers(1, max_items + 1))
        cells = [divmod(int(c), 2) for c in rng.choice(4, size=k, replace=False)]
        picks = [int(rng.integers(len(items)))]
        while len(picks) < k:  # two items of different classes, so a caption names each one
            j = int(rng.integers(len(items)))
            if labels[j] != labels[picks[0]]:
                picks.append(j)
        for (row, col), j in zip(cells, picks):
            top, left = row * CELL + OFFSET, col * CELL + OFFSET
            canvases[i, 0, top:top + ITEM, left:left + ITEM] = items[j]
        captions.append(_captions([int(labels[j]) for j in picks], cells, rng))
    return Split(torch.from_numpy(canvases), captions, caption)


def fashion_captions(root: str | None = None, n_train: PositiveInt = 20000, n_test: PositiveInt = 1000,
                     max_items: int = 2, seed: int = 0,
                     caption: Literal["random", "first"] = "random") -> DataSource:
    """Fashion-MNIST items on a 64x64 canvas with captions such as "a sneaker to the left of a bag".

    Test canvases use only test-split items. Deterministic for a seed; offline.

    root: the Fashion-MNIST folder, as for fashion_mnist (null: Debian's package, then a download).
    n_train: canvases in the training split.
    n_test: canvases in the test split.
    max_items: the most items on a canvas, 1 or 2 (each canvas holds 1 to max_items).
    seed: draws the items, their cells and the captions' relations, for both splits.
    caption: the caption a batch uses: 'random' (a two-item canvas is told either way round) or 'first'."""
    if max_items not in (1, 2):
        raise RecipeError(f"'max_items' for fashion_captions must be 1 or 2, got {max_items}.")
    items = fashion_mnist(root)
    return DataSource(make_split(items.train, n_train, max_items, seed * 2 + 1, caption),
                      make_split(items.test, n_test, max_items, seed * 2 + 2, caption))
