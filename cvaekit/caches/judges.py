"""Judges: small networks a metric trains once per data set and keeps, so every run and
checkpoint is judged by the same one. One file per key under the cache's judges/ folder
(`cvaekit cache clear --judges` clears them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from cvaekit.caches.paths import cache_dir
from cvaekit.store.checkpoint import load_checkpoint, save_checkpoint

M = TypeVar("M", bound=nn.Module)


def cached_judge_module(key: str, make: Callable[[], M], fit: Callable[[], M]) -> M:
    """The judge stored under `key` (made by `make`, its weights loaded), else `fit()`'s, stored; in eval mode."""
    path = cache_dir("judges") / f"{key}.pt"
    if path.is_file():
        judge = make()
        judge.load_state_dict(load_checkpoint(path))
        return judge.eval()
    judge = fit()
    save_checkpoint(judge.state_dict(), path)
    return judge.eval()
