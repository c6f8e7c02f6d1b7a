"""One-hot label conditioner: a word such as "sneaker" -> its class -> a one-hot vector."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.core.data import DataInfo
from cvaekit.errors import (
    RecipeError,
    UnknownConditionError,
    choices_text,
    did_you_mean,
)


def normalize_word(text: str) -> str:
    """Case, spaces, hyphens and slashes do not matter: 'T-Shirt' == 't shirt' == 'tshirt'."""
    return re.sub(r"[\s\-_/]+", "", text.strip().lower())


def check_classes(classes: list[str] | None, data: DataInfo) -> None:
    """Class names given in the recipe must be words, one per class of the data set."""
    if classes is None:
        return
    blank = [i for i, c in enumerate(classes) if not normalize_word(c)]
    if blank:
        raise RecipeError(f"'model.conditioner.classes' must be class names, but entry {blank[0]} is "
                          f"{classes[blank[0]]!r}. Give one word per class, or leave the key out to use the "
                          f"data set's names.")
    if data.classes and len(classes) != len(data.classes):
        raise RecipeError(f"'model.conditioner.classes' names {len(classes)} classes ({choices_text(classes)}), "
                          f"but the data set has {len(data.classes)} ({choices_text(data.classes)}). Give one "
                          f"name per class, or leave the key out to use the data set's names.")


class OneHot(nn.Module):
    """One-hot vector of the class a label or word names (the study's short-text condition).

    classes: a name for each class, in label order (null: the data set's own names)."""

    def __init__(self, *, data: DataInfo, classes: list[str] | None = None):
        super().__init__()
        check_classes(classes, data)
        self.classes = list(classes or data.classes or [])
        if not self.classes:
            raise RecipeError("Conditioner 'onehot' needs class names: the data set has none, "
                              "so give them as 'model.conditioner.classes'.")
        self.dim = len(self.classes)
        self.words = {normalize_word(c): i for i, c in enumerate(self.classes)}
        for alias, target in (data.aliases or {}).items():
            if target in self.classes:
                self.words.setdefault(normalize_word(alias), self.classes.index(target))
        for i, c in enumerate(self.classes):  # each part of 'T-shirt/top' names it too
            for part in re.split(r"/", c):
                self.words.setdefault(normalize_word(part), i)

    def parse(self, texts: list[str]) -> torch.Tensor:
        """Words -> label ids; an unknown word is an error that lists the valid ones."""
        ids = []
        for text in texts:
            key = normalize_word(text)
            if key not in self.words and key.endswith("s"):
                key = key[:-1] if key[:-1] in self.words else key
            if key not in self.words:
                raise UnknownConditionError(
                    f"'{text}' is not a class this model knows.{did_you_mean(key, self.words)} "
                    f"Classes: {choices_text(self.classes)}. Other accepted words: "
                    f"{choices_text(w for w in self.words if w not in map(normalize_word, self.classes))}.")
            ids.append(self.words[key])
        return torch.tensor(ids, dtype=torch.long)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), self.dim).float()
