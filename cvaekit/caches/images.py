"""Images decoded once into a memory-mapped uint8 file, shared by every data set that reads
picture files (COCO, image folders, Hugging Face data sets, torchvision sets).

Each image is fitted to `size` x `size` (centre-cropped, or padded) in `channels` (1 grey,
3 RGB) and written as one row of `images.u8` under `cache_dir(kind, <label>-<size>px-<key>)`;
`meta.json`, written last, marks the cache complete and holds each kept image's condition
(label id or captions) and the names of the images that could not be read (`skipped`), those
of them whose file does not exist listed again as `missing`. Later epochs and
runs index the file and never decode again.

Decoding runs in a pool of processes (one per core) and streams into the file, so memory
stays bounded for sets larger than RAM. Progress is saved every few seconds: an
interrupted build continues where it stopped, and a lock lets concurrent processes (torchrun
ranks, parallel runs) wait for the one that builds it. meta.json holds images.u8's size and
checksum, checked at every load: a damaged file is decoded again, never read (files.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image, ImageOps
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from cvaekit.caches.files import checksum, damage, locked, manifest, say_repaired, write_json
from cvaekit.caches.paths import cache_dir
from cvaekit.caches.skipped import (  # noqa: F401 - where data sets have imported them from
    IgnoredFilesWarning,
    SkippedImagesWarning,
    skipped_text,
    warn_skipped,
)

CACHE_VERSION = 2
CHUNK = 32  # images per task sent to a worker
SAVE_SECONDS = 5.0  # how often an unfinished build records how far it got
Fit = Literal["crop", "pad"]
MISSING = "missing"  # what `decode` gives for an image whose file does not exist


class ImageReader(Protocol):
    """What the cache decodes: `open(i)` gives image i as a PIL image (or raises when it is
    unreadable); `name(i)` says which one it is in messages."""

    def __len__(self) -> int: ...
    def open(self, i: int) -> Image.Image: ...
    def name(self, i: int) -> str: ...


@dataclass
class FileReader:
    """Images from files on disk."""

    paths: Sequence[str | os.PathLike]

    def __len__(self) -> int:
        return len(self.paths)

    def open(self, i: int) -> Image.Image:
        return Image.open(self.paths[i])

    def name(self, i: int) -> str:
        return Path(self.paths[i]).name


def open_encoded(value: Any) -> Image.Image:
    """A PIL image from what data sets store: a PIL image, a path, encoded bytes, or a
    `{"bytes": ..., "path": ...}` record (Hugging Face's undecoded Image feature)."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    if isinstance(value, (str, os.PathLike)):
        return Image.open(value)
    if isinstance(value, np.ndarray):
        return Image.fromarray(value)
    raise ValueError(f"not an image: {type(value).__name__}")


def fit_image(img: Image.Image, size: int, channels: int = 3, fit: Fit = "crop") -> np.ndarray:
    """`img` as uint8 [channels, size, size]: scaled so its shorter side fills the square and
    centre-cropped (`crop`), or scaled to fit inside it and padded with black (`pad`)."""
    mode = "L" if channels == 1 else "RGB"
    img.draft(mode, (size, size))  # JPEG: let the decoder downscale (2x, 4x, 8x) for free
    img = img.convert(mode)
    if fit == "crop":
        img = ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    else:
        img = ImageOps.pad(img, (size, size), Image.Resampling.BILINEAR, color=0)
    array = np.asarray(img)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def decode(reader: ImageReader, i: int, size: int, channels: int, fit: Fit) -> np.ndarray | str | None:
    """Image i fitted to the cache's shape; MISSING when its file does not exist, None when
    it cannot be read (any other reason: a truncated file, a wrong format, a decompression
    bomb)."""
    try:
        with contextlib.closing(reader.open(i)) as img:
            return fit_image(img, size, channels, fit)
    except FileNotFoundError:
        return MISSING
    except Exception:  # noqa: BLE001 - an unreadable image is skipped and counted, never fatal
        return None


@dataclass
class CachedImages:
    """A complete cache: images [N, C, S, S] uint8 (memory-mapped), the kept images'
    conditions, and the names of those skipped (`missing`: those whose file does not exist)."""

    images: Any  # torch.Tensor
    conditions: list
    skipped: list[str]
    folder: Path
    missing: list[str] = field(default_factory=list)


def cached_images(kind: str, label: str, ident: object,
                  source: Callable[[], tuple[ImageReader, Sequence]], *, size: int, channels: int = 3, fit: Fit = "crop", progress: bool = True,
                  workers: int | None = None) -> CachedImages:
    """The images `source()` names, decoded into the cache when they are not there yet.

    `ident` (anything JSON-serialisable) names the source: the same ident, size, channels and
    fit find the same cache. `source()`, called only to build the cache, gives a reader and
    the conditions (`conditions[i]` belongs to image i; those of the images that could be
    read are kept). `workers` processes decode (default: one per core)."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, ident, size, channels, fit], default=str)
                          .encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "_." else "_" for c in label)[-40:] or "images"
    folder = cache_dir(kind, f"{slug}-{size}px-{digest}")
    cache = _verified(folder, repair=False)
    if cache is None:
        with locked(folder):  # one process decodes; the others wait here, then read what it wrote
            cache = _verified(folder, repair=True)  # built (or found damaged) meanwhile?
            if cache is None:
                reader, conditions = source()
                _build(folder, reader, list(conditions), size, channels, fit, progress, workers, label)
                cache = load_cache(folder)
    return cache


def _verified(folder: Path, repair: bool) -> CachedImages | None:
    """The complete cache in `folder` when images.u8 matches the size and checksum in
    meta.json; None when it is not built yet, or is damaged (then, with `repair`, under the
    lock, it is said and removed, to be decoded again)."""
    meta_file, data = folder / "meta.json", folder / "images.u8"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())  # written last and whole: a complete build's
        expected = {"bytes": meta["count"] * meta["channels"] * meta["size"] ** 2, "sha256": meta.get("sha256")}
        problem = damage(data, expected)
    except (ValueError, KeyError, TypeError):
        meta, problem = {}, "meta.json cannot be read"
    if problem:
        if repair:
            say_repaired(f"The image cache '{folder}'", problem, "decoding its images again")
            meta_file.unlink()
            data.unlink(missing_ok=True)
        return None
    if not expected["sha256"]:  # written by an older cvaekit: its checksum from now on
        write_json(meta_file, {**meta, "sha256": checksum(data)})
    return load_cache(folder)


def load_cache(folder: Path) -> CachedImages:
    """A complete cache folder, memory-mapped."""
    import torch

    meta = json.loads((folder / "meta.json").read_text())
    shape = (meta["count"], meta["channels"], meta["size"], meta["size"])
    if meta["count"]:
        images = torch.from_file(str(folder / "images.u8"), shared=False, size=int(np.prod(shape)),
                                 dtype=torch.uint8).view(shape)
    else:
        images = torch.empty(shape, dtype=torch.uint8)
    return CachedImages(images, meta["conditions"], meta["skipped"], folder, meta.get("missing", []))


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------- building

_job: tuple | None = None  # (reader, size, channels, fit) in a worker process


def _init_worker(job: tuple) -> None:
    global _job
    _job = job


def _decode_range(bounds: tuple[int, int]) -> list[np.ndarray | None]:
    reader, size, channels, fit = _job
    return [decode(reader, i, size, channels, fit) for i in range(*bounds)]


def _decoded(reader, start: int, size: int, channels: int, fit: Fit,
             workers: int) -> Iterator[np.ndarray | None]:
    """Images start.. in order, from a pool of `workers` processes (inline for one)."""
    ranges = [(a, min(a + CHUNK, len(reader))) for a in range(start, len(reader), CHUNK)]
    job = (reader, size, channels, fit)
    if workers <= 1 or len(ranges) <= 1:
        _init_worker(job)
        for r in ranges:
            yield from _decode_range(r)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)  # fork: the reader is inherited, not pickled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process: workers touch only PIL and numpy
        pool = context.Pool(min(workers, len(ranges)), _init_worker, (job,))
    with pool:
        for chunk in pool.imap(_decode_range, ranges):
            yield from chunk


def _build(folder: Path, reader: ImageReader, conditions: list, size: int, channels: int, fit: Fit,
           progress: bool, workers: int | None, label: str) -> None:
    """Decode into folder/partial.u8, saving how far it got every few seconds; on success
    rename it to images.u8 and write meta.json (last, atomically)."""
    total, row = len(reader), channels * size * size
    state_file, data_file = folder / "partial.json", folder / "partial.u8"
    state = {"total": total, "row": row, "done": 0, "skipped": [], "missing": []}
    if state_file.is_file() and data_file.is_file():
        saved = json.loads(state_file.read_text())
        if saved.get("total") == total and saved.get("row") == row:
            state = saved  # an interrupted build: continue after what it recorded
    mode = "r+" if state["done"] else "w+"
    out = np.memmap(data_file, dtype=np.uint8, mode=mode, shape=(max(total, 1), row))
    skipped, missing = set(state["skipped"]), set(state.get("missing", []))
    kept = state["done"] - len(skipped)
    columns = [TextColumn(f"decoding {label}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:,.0f} img/s"), TimeRemainingColumn()]
    saved_at, started = time.monotonic(), time.perf_counter()
    done = state["done"]

    def save(out: np.memmap) -> None:
        out.flush()
        write_json(state_file, {"total": total, "row": row, "done": done, "skipped": sorted(skipped),
                                 "missing": sorted(missing)})

    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("decode", total=total, completed=done, rate=0.0)
        for image in _decoded(reader, done, size, channels, fit, workers or default_workers()):
            if image is None or isinstance(image, str):
                skipped.add(done)
                if image == MISSING:
                    missing.add(done)
            else:
                out[kept] = image.reshape(-1)
                kept += 1
            done += 1
            if done % CHUNK == 0 or done == total:
                bar.update(task, completed=done,
                           rate=(done - state["done"]) / max(time.perf_counter() - started, 1e-9))
            if time.monotonic() - saved_at > SAVE_SECONDS:
                save(out)
                saved_at = time.monotonic()
    out.flush()
    del out
    os.truncate(data_file, kept * row)
    os.replace(data_file, folder / "images.u8")
    meta = {"version": CACHE_VERSION, "count": kept, "size": size, "channels": channels, "fit": fit,
            "conditions": [c for i, c in enumerate(conditions) if i not in skipped],
            "skipped": [reader.name(i) for i in sorted(skipped)],
            "missing": [reader.name(i) for i in sorted(missing)], **manifest(folder / "images.u8")}
    write_json(folder / "meta.json", meta)  # last: it marks the cache complete
    state_file.unlink(missing_ok=True)
