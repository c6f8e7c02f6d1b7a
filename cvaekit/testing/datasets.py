"""The dataset contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cvaekit.core.data import DataSource, Split
from cvaekit.errors import CvaekitError
from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import _Checker, _keeps_rng


@_keeps_rng
def check_dataset(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                  bad_params: dict[str, Any] | None = None, registry: Registry | None = None,
                  inspect_items: int = 2000) -> DataSource:
    """A dataset: a DataSource of uint8 [N, C, H, W] splits with a label id (within
    `classes`) or a non-empty caption list per image; batches are floats in [0, 1];
    building twice gives the same data; with `bad_params` it must raise a CvaekitError."""
    c = _Checker("dataset", name, params, registry)
    c.check_params()
    src = c.build()
    if not isinstance(src, DataSource):
        c.fail("interface", f"the factory must return a cvaekit.data.DataSource, got {type(src).__name__}")
    for split_name in ("train", "test"):
        split = getattr(src, split_name)
        if not isinstance(split, Split):
            c.fail("interface", f"'{split_name}' must be a cvaekit.data.Split, got {type(split).__name__}")
        _check_split(c, src, split, split_name, inspect_items)
    if src.train.images.shape[1:] != src.test.images.shape[1:]:
        c.fail("output shape", f"train images are {tuple(src.train.images.shape[1:])} but test images "
               f"are {tuple(src.test.images.shape[1:])}")
    with c.point("interface"):
        prompts = src.default_prompts()
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        c.fail("interface", f"default_prompts() must give non-empty texts, got {prompts!r}")

    again = c.build()
    for split_name in ("train", "test"):
        a, b = getattr(src, split_name), getattr(again, split_name)
        idx = torch.arange(min(len(a), 64))
        same = len(a) == len(b) and torch.equal(a.images[idx], b.images[idx]) and (
            torch.equal(a.conditions[idx], b.conditions[idx]) if a.labelled
            else a.conditions[:64] == b.conditions[:64])
        if not same:
            c.fail("determinism", f"building it twice with the same parameters gives a different "
                   f"{split_name} split")
    if bad_params is not None:
        try:
            c.registry.build("dataset", c.name, {**c.params, **bad_params})
        except CvaekitError:
            pass
        except Exception as exc:  # noqa: BLE001
            c.fail("bad input", f"parameters {bad_params} raised {type(exc).__name__} ({exc}); it must "
                   f"raise a cvaekit.errors.DataError (or another CvaekitError) that says what is wrong")
        else:
            c.fail("bad input", f"parameters {bad_params} were accepted; they must raise a DataError")
    return src


def _check_split(c: _Checker, src: DataSource, split: Split, which: str, inspect_items: int) -> None:
    images = split.images
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        c.fail("output dtype", f"{which} images must be a uint8 tensor [N, C, H, W], got "
               f"{getattr(images, 'dtype', type(images).__name__)} of shape {tuple(getattr(images, 'shape', ()))}")
    n = images.shape[0]
    if n == 0 or images.shape[1] not in (1, 3):
        c.fail("output shape", f"{which} images have shape {tuple(images.shape)}: need N > 0 and 1 or 3 channels")
    if split.labelled:
        labels = split.conditions
        if labels.dtype != torch.long or tuple(labels.shape) != (n,):
            c.fail("output dtype", f"{which} labels must be a LongTensor [N={n}], got {labels.dtype} {tuple(labels.shape)}")
        if not src.classes or labels.min() < 0 or labels.max() >= len(src.classes):
            c.fail("interface", f"{which} label ids must index 'classes' ({src.classes!r})")
    else:
        if len(split.conditions) != n:
            c.fail("output shape", f"{which} has {n} images but {len(split.conditions)} caption lists")
        for i, caps in enumerate(split.conditions[:inspect_items]):
            if not isinstance(caps, (list, tuple)) or not caps or not all(isinstance(t, str) and t for t in caps):
                c.fail("output dtype", f"{which} image {i} must have a non-empty list of caption strings, got {caps!r}")
    with c.point("interface"):
        x, raw = split.batch(torch.arange(min(4, n)), generator=torch.Generator().manual_seed(0))
    if x.dtype != torch.float32 or x.min() < 0 or x.max() > 1:
        c.fail("output dtype", f"{which} batches must be float32 images in [0, 1]")
    if len(raw) != x.shape[0]:
        c.fail("output shape", f"a {which} batch of {x.shape[0]} images has {len(raw)} conditions")
