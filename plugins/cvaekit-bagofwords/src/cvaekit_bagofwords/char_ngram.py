"""Character n-gram conditioner: text -> hashed counts of its character n-grams.

Vocabulary-free (the hashing trick), so it needs no data to build, nothing to download,
and takes words it never saw: "sneakers" shares most n-grams with "sneaker". An optional
learned projection turns the sparse counts into a dense condition trained with the model.
"""

from __future__ import annotations

import re
import zlib

import torch
from torch import nn

from cvaekit.data import DataInfo
from cvaekit.errors import RecipeError, UnknownConditionError

CACHE_LIMIT = 100_000  # distinct texts whose n-gram features are kept


class CharNGram(nn.Module):
    """Hashed character n-grams of a caption or label word, L2-normalised, optionally projected.

    ngrams: lengths of the character n-grams counted (words are padded with spaces).
    buckets: size of the hashed count vector; collisions get rarer as it grows.
    dim: size of a learned linear projection of the counts; null uses the counts as they are.
    lowercase: fold case before counting, so "Red" and "red" are one n-gram.
    """

    def __init__(self, *, data: DataInfo, ngrams: list[int] = (2, 3, 4), buckets: int = 2048,
                 dim: int | None = 128, lowercase: bool = True):
        super().__init__()
        if not ngrams or any(n < 1 for n in ngrams):
            raise RecipeError(f"'ngrams' of conditioner 'char_ngram' must be positive lengths, got {list(ngrams)}.")
        if buckets < 1 or (dim is not None and dim < 1):
            raise RecipeError(f"'buckets' and 'dim' of conditioner 'char_ngram' must be positive, "
                              f"got buckets={buckets}, dim={dim}.")
        self.ngrams, self.buckets, self.lowercase = sorted(set(ngrams)), buckets, lowercase
        self.classes = list(data.classes or [])  # label ids -> words, for labelled data
        self.project = nn.Linear(buckets, dim) if dim is not None else None
        self.dim = dim if dim is not None else buckets
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # follows .to(device)
        self._features: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def parse(self, texts: list[str]) -> list[str]:
        """Any non-empty text is a condition; the texts themselves are the raw conditions."""
        for text in texts:
            if not isinstance(text, str) or not self._grams(text):
                raise UnknownConditionError(
                    f"Conditioner 'char_ngram' needs a non-empty text with letters or digits, got {text!r}.")
        return list(texts)

    def forward(self, raw: list[str] | torch.Tensor) -> torch.Tensor:
        """Caption strings, or label ids of a labelled data set (read as their class names)."""
        texts = [self.classes[i] for i in raw.tolist()] if isinstance(raw, torch.Tensor) else raw
        counts = torch.zeros(len(texts), self.buckets)
        for row, text in enumerate(texts):
            index, values = self._featurize(text)
            counts[row, index] = values
        counts = counts.to(self._anchor.device)
        return self.project(counts) if self.project is not None else counts

    def _grams(self, text: str) -> list[str]:
        text = text.lower() if self.lowercase else text
        words = re.findall(r"\w+", text)
        padded = [f" {w} " for w in words]
        return [w[i:i + n] for w in padded for n in self.ngrams for i in range(len(w) - n + 1)]

    def _featurize(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Bucket indices and L2-normalised counts of one text, cached per distinct text."""
        if text not in self._features:
            bins: dict[int, float] = {}
            for gram in self._grams(text):
                b = zlib.crc32(gram.encode()) % self.buckets  # stable across processes, unlike hash()
                bins[b] = bins.get(b, 0.0) + 1.0
            values = torch.tensor(list(bins.values()))
            if len(self._features) >= CACHE_LIMIT:
                self._features.clear()
            self._features[text] = (torch.tensor(list(bins), dtype=torch.long),
                                    values / values.norm().clamp_min(1e-12))
        return self._features[text]
