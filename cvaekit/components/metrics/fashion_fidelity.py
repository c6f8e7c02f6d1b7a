"""Caption fidelity on `fashion_captions`: the Fashion-MNIST judge reads each cell of a
picture (an item, or empty), and the picture passes when it holds exactly the items its
caption names, in the place or relation the caption says."""

from __future__ import annotations

import torch

from cvaekit.components.datasets.fashion_captions import (
    CELL,
    ITEM,
    OFFSET,
    WORDS,
    Layout,
    parse_caption,
    relation_holds,
)
from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.components.metrics.caption_fidelity import caption_fidelity
from cvaekit.components.metrics.judge import Judge, cached_judge, predictions
from cvaekit.evaluation.context import EvalContext
from cvaekit.recipe import PositiveInt

EMPTY_INK = 0.05  # mean brightness below which a cell counts as empty


def cells_of(images: torch.Tensor) -> torch.Tensor:
    """[N, 4, 1, 28, 28]: the item-sized crop of each grid cell, row by row."""
    crops = [images[:, :, r * CELL + OFFSET:r * CELL + OFFSET + ITEM, c * CELL + OFFSET:c * CELL + OFFSET + ITEM]
             for r in (0, 1) for c in (0, 1)]
    return torch.stack(crops, dim=1)


def read(judge: Judge, images: torch.Tensor) -> list[dict[tuple[int, int], int]]:
    """Per image: the class the judge sees in each non-empty cell, by (row, col)."""
    crops = cells_of(images.float())
    ink = crops.mean(dim=(2, 3, 4))
    classes = predictions(judge, crops.flatten(0, 1)).view(len(images), 4)
    return [{divmod(k, 2): int(classes[i, k]) for k in range(4) if ink[i, k] >= EMPTY_INK}
            for i in range(len(images))]


def matches(layout: Layout, seen: dict[tuple[int, int], int]) -> bool:
    if sorted(seen.values()) != sorted(layout.items):
        return False
    if layout.cell is not None:
        return seen.get(layout.cell) == layout.items[0]
    where = {label: cell for cell, label in seen.items()}
    return relation_holds(where[layout.items[0]], layout.relation, where[layout.items[1]])


def fidelity(judge: Judge, captions: list[str], images: torch.Tensor) -> float:
    """Share of images whose cells the judge reads as their caption asks."""
    seen = read(judge, images)
    return sum(matches(parse_caption(c), s) for c, s in zip(captions, seen)) / max(len(captions), 1)


def fashion_judge(judge_epochs: int = 2, seed: int = 0) -> Judge:
    """The Fashion-MNIST judge that `cond_accuracy` uses (cached), trained on the 28x28 items."""
    items = fashion_mnist()
    return cached_judge(items.train, len(WORDS), judge_epochs, seed)


class FashionFidelity:
    """Caption fidelity on fashion_captions: the share of generated images the judge reads as asked.

    The Fashion-MNIST judge reads each cell; shuffled captions (chance) and the real test
    images (the ceiling) are scored beside the samples.

    n_captions: how many test captions (the first ones) get one generated image each.
    judge_epochs: epochs the Fashion-MNIST judge trains on the real training items."""

    def __init__(self, n_captions: PositiveInt = 500, judge_epochs: PositiveInt = 2):
        self.n_captions = n_captions
        self.judge_epochs = judge_epochs

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        judge = fashion_judge(self.judge_epochs)
        return caption_fidelity(ctx, self.n_captions, parse_caption, lambda c, im: fidelity(judge, c, im),
                                "fashion_fidelity", "fashion_captions")
