"""The data contract: what a dataset component returns, and how batches are drawn.

Images live in one uint8 tensor [N, C, H, W] (in memory or memory-mapped) and batches
are taken by indexing it, so there is no per-item Python work in the training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

RawConditions = Any  # label ids (LongTensor [B]) or captions (list[str]), as the data gives them


@dataclass
class Split:
    """One split: uint8 images [N, C, H, W] and, per image, a label id or its captions.

    `conditions` is a LongTensor of label ids [N], or a list holding each image's
    captions (a list of strings). `caption` says which caption a batch uses."""

    images: torch.Tensor
    conditions: torch.Tensor | list[list[str]]
    caption: Literal["random", "first"] = "random"
    binarize: bool = False  # dynamic binarization: see `drawn`
    shift: int = 0  # pixels a training picture moves each way, drawn anew at every step: see `drawn`

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        images, conds = self.batch(torch.tensor([i]), caption="first")
        return images[0], conds[0]

    @property
    def labelled(self) -> bool:
        return isinstance(self.conditions, torch.Tensor)

    def batch(self, index: torch.Tensor, generator: torch.Generator | None = None,
              caption: str | None = None, draws: torch.Tensor | None = None) -> tuple[torch.Tensor, RawConditions]:
        """Float images in [0, 1] and the raw conditions of the samples at `index`.

        With `caption: random`, `draws` (uniform in [0, 1), one per sample; drawn from
        `generator` when not given) picks each image's caption: caption floor(u * count)."""
        images = self.drawn(self.images[index].float().div_(255), generator)
        return images, self.conditions_at(index, generator, caption, draws)

    @property
    def drawn_per_step(self) -> bool:
        """Whether a batch is drawn anew at each use (`drawn` changes it)."""
        return self.binarize or self.shift > 0

    def drawn(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch as the model sees it. With `binarize`, each pixel is drawn 0 or 1 with its
        grey value as the probability, anew at every use (dynamic binarization): a model of
        binary images that never sees the same draw twice overfits one static draw less. With
        `shift`, each picture moves by up to that many pixels each way: a few hundred pictures
        look like more, and a caption's words about places still hold after a small move."""
        if self.binarize:
            images = torch.bernoulli(images, generator=generator)
        return shifted(images, self.shift, generator) if self.shift > 0 else images

    def conditions_at(self, index: torch.Tensor, generator: torch.Generator | None = None,
                      caption: str | None = None, draws: torch.Tensor | None = None) -> RawConditions:
        """The raw conditions of the samples at `index` (see `batch`)."""
        if self.labelled:
            return self.conditions[index]
        rows = index.tolist()
        if (caption or self.caption) == "random":
            u = torch.rand(len(rows), generator=generator) if draws is None else draws
            counts = torch.tensor([len(self.conditions[i]) for i in rows])
            picks = pick_captions(u, counts).tolist()
        else:
            picks = [0] * len(rows)
        return [self.conditions[i][j] for i, j in zip(rows, picks)]

    def head(self, n: int | None) -> Split:
        """The first `n` samples (all when n is None)."""
        if n is None or n >= len(self):
            return self
        return replace(self, images=self.images[:n], conditions=self.conditions[:n])

    def part(self, rank: int, parts: int) -> Split:
        """Every `parts`-th sample from `rank`, as many in each part (one process's share)."""
        if parts == 1:
            return self
        stop = len(self) - len(self) % parts
        return replace(self, images=self.images[rank:stop:parts], conditions=self.conditions[rank:stop:parts])

    def spread(self, n: int) -> torch.Tensor:
        """Positions of up to `n` images spread over the split, for figures: labelled, the
        first image of each class in turn, then the second of each, ...; captioned, evenly
        spaced over the split, each moved on (before the next) to an image whose first
        caption is not shown yet when there is one. A split sorted by class (a folder per
        class) or by caption still shows many of them."""
        n = min(n, len(self))
        if n <= 0:
            return torch.zeros(0, dtype=torch.long)
        if not self.labelled:
            grid = torch.linspace(0, len(self) - 1, n).round().long().tolist()  # distinct: n <= len
            seen, picks = set(), []
            for start, stop in zip(grid, grid[1:] + [len(self)]):
                pick = next((i for i in range(start, stop) if self.conditions[i][0] not in seen), start)
                seen.add(self.conditions[pick][0])
                picks.append(pick)
            return torch.tensor(picks)
        labels = self.conditions.long()
        order = torch.argsort(labels, stable=True)
        _, counts = torch.unique_consecutive(labels[order], return_counts=True)
        rank = torch.arange(len(order)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        key = rank * (int(labels.max()) + 1) + labels[order] - int(labels.min())
        return order[torch.argsort(key, stable=True)[:n]]

    def texts(self) -> list[str]:
        """Every caption of this split (empty for labelled data)."""
        return [] if self.labelled else [c for caps in self.conditions for c in caps]


def pick_captions(draws: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Which caption each image uses: floor(u * count) for a uniform u in [0, 1)."""
    return torch.minimum((draws * counts).long(), counts - 1)


@dataclass
class DataSource:
    """What a dataset component returns: a train and a test split, plus what the
    conditioner needs to know about the conditions (label names and their aliases)."""

    train: Split
    test: Split
    classes: list[str] | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # extra word -> class name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def info(self) -> DataInfo:
        return DataInfo(self.image_shape, self.classes, dict(self.aliases), self.train.texts())

    def default_prompts(self, n: int = 8) -> list[str]:
        """Texts for sample grids: every class, or the first captions of `n` test images
        spread over the test split (`Split.spread`)."""
        if self.classes is not None:
            return list(self.classes)
        return [self.test.conditions[i][0] for i in self.test.spread(n).tolist()]

    def describe(self, raw: RawConditions) -> list[str]:
        """Raw conditions as text (class names or the captions themselves)."""
        if isinstance(raw, torch.Tensor):
            return [self.classes[i] if self.classes else str(i) for i in raw.tolist()]
        return list(raw)


@dataclass
class DataInfo:
    """What a conditioner is built from. Saved in every checkpoint (less `texts`), so a
    trained run can be loaded without its data set: a conditioner that derives state from
    `texts` (a vocabulary, say) must keep it in its state_dict."""

    image_shape: tuple[int, int, int]
    classes: list[str] | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    texts: Sequence[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"image_shape": list(self.image_shape), "classes": self.classes,
                "aliases": self.aliases}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        return cls(tuple(d["image_shape"]), d.get("classes"), d.get("aliases") or {}, None)


def as_uint8_images(x: torch.Tensor) -> torch.Tensor:
    """[N, H, W] or [N, C, H, W] uint8 -> [N, C, H, W] uint8, contiguous."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.contiguous()


def shifted(images: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each picture of [N, C, H, W] moved by a random whole number of pixels in [-shift, shift]
    on each axis, the edge pixels repeated into what it uncovers."""
    if shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (shift,) * 4, mode="replicate")
    device = generator.device if generator is not None else images.device
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=generator, device=device).to(images.device)
    rows = (torch.arange(h, device=images.device) + dy[:, None])[:, :, None]  # [N, H, 1]
    cols = (torch.arange(w, device=images.device) + dx[:, None])[:, None, :]  # [N, 1, W]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # [N, H, W, C] back to [N, C, H, W]
