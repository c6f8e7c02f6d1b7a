"""What the data sets of the user's own pictures share: their image keys, a seeded test
split, and a split loaded through the decode cache (cvaekit.image_cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch

from cvaekit.caches.images import (
    Fit,
    ImageReader,
    cached_images,
    skipped_text,
    warn_skipped,
)
from cvaekit.core.data import Split
from cvaekit.errors import DataError, RecipeError

Channels = Literal[1, 3]
__all__ = ["Channels", "Fit", "as_captions", "cached_split", "check_image_keys", "split_indices"]


def check_image_keys(image_size: int, test_fraction: float | None = None) -> None:
    if image_size < 8:
        raise RecipeError(f"'data.image_size' must be at least 8 pixels, got {image_size}.")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise RecipeError(f"'data.test_fraction' must be a fraction in (0, 1), got {test_fraction}.")


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and test positions (each sorted): `test_fraction` of `n`, at least one each,
    drawn with `seed`, so the same data and seed always split the same way."""
    if n < 2:
        raise DataError(f"A test split needs at least 2 images to cut from, found {n}.")
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_test:]), sorted(order[:n_test])


def cached_split(kind: str, label: str, ident: object, source: Callable[[], tuple[ImageReader, Sequence]],
                 where: object, *, image_size: int, channels: int, fit: str, progress: bool,
                 workers: int | None, labelled: bool, caption: str = "random") -> Split:
    """One split from the decode cache (built on first use): skipped images are a warning,
    no readable image at all a DataError naming `where`."""
    cache = cached_images(kind, label, ident, source, size=image_size, channels=channels, fit=fit,
                          progress=progress, workers=workers)
    if not len(cache.images):
        tried = f" {skipped_text(cache.skipped, where, cache.missing)}." if cache.skipped else ""
        raise DataError(f"No image in '{where}' could be read ({len(cache.skipped)} listed).{tried}")
    warn_skipped(cache.skipped, where, stacklevel=4, missing=cache.missing)
    conditions = torch.tensor(cache.conditions, dtype=torch.long) if labelled else cache.conditions
    return Split(cache.images, conditions, caption)


def as_captions(value, where: str, column: str) -> list[str]:
    """One caption or a list of them -> the non-empty ones, stripped; anything else is an
    error naming `where` and the column."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise DataError(f"{where}: column '{column}' must hold a caption or a list of captions, got {value!r}.")
