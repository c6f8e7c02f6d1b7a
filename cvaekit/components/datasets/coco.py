"""MS-COCO captions (2017 layout) through pycocotools: the study's long-text data.

Each image is centre-cropped and resized to `image_size` once, and kept as uint8 in a
memory-mapped file under `cache_dir("coco", <key>)`: later epochs and runs index that file
and never decode a JPEG again. An image that cannot be read is skipped, and the number
skipped is reported as a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ...cache import cache_dir
from ...data import DataSource, Split
from ...errors import DataError, RecipeError
from ...optional import require

CACHE_VERSION = 1
LAYOUT = ("train2017", "annotations/captions_train2017.json",
          "val2017", "annotations/captions_val2017.json")

HOW_TO_GET = ("Get MS-COCO 2017 from https://cocodataset.org (train2017.zip, val2017.zip, "
              "annotations_trainval2017.zip), unpack them into one folder and give it as 'data.root' "
              f"(it must hold {', '.join(LAYOUT)}): --set data.root=/data/coco.")


class SkippedImagesWarning(UserWarning):
    """Some COCO images could not be read and were left out."""


def coco_captions(root: str | None = None,
                  train_images: str | None = None, train_captions: str | None = None,
                  test_images: str | None = None, test_captions: str | None = None,
                  subset: float = 1.0, test_subset: float = 1.0,
                  caption: Literal["random", "first"] = "random",
                  image_size: int = 224, seed: int = 0, progress: bool = True) -> DataSource:
    """MS-COCO images with their captions (5 per image), centre-cropped to `image_size`.

    Give `root` (holding train2017/, val2017/ and annotations/captions_*2017.json) or the
    four paths (each one given wins over `root`). `subset` keeps that fraction of the
    training images, chosen with `seed` (the study used 0.1); `caption` picks each image's
    caption per batch: a random one, or always the first."""
    for name, value in (("subset", subset), ("test_subset", test_subset)):
        if not 0 < value <= 1:
            raise RecipeError(f"'data.{name}' must be a fraction in (0, 1], got {value}.")
    if image_size < 8:
        raise RecipeError(f"'data.image_size' must be at least 8 pixels, got {image_size}.")
    if root and not Path(root).is_dir():
        raise DataError(f"The COCO folder '{root}' (data.root) does not exist. {HOW_TO_GET}")
    given = (train_images, train_captions, test_images, test_captions)
    paths = [Path(p) if p else (Path(root) / default if root else None) for p, default in zip(given, LAYOUT)]
    keys = ("train_images", "train_captions", "test_images", "test_captions")
    for key, path, default in zip(keys, paths, LAYOUT):
        if path is None:
            raise RecipeError(f"Data set 'coco_captions' needs 'data.root' (a folder with {', '.join(LAYOUT)}) "
                              f"or 'data.{key}'.")
        if not path.exists():
            raise DataError(f"COCO {key.replace('_', ' ')} '{path}' does not exist. {HOW_TO_GET} "
                            f"Or give 'data.{key}'.")
    train = load_split(paths[0], paths[1], subset, seed, image_size, progress)
    test = load_split(paths[2], paths[3], test_subset, seed, image_size, progress)
    return DataSource(Split(train.images, train.conditions, caption),
                      Split(test.images, test.conditions, "first"))


def load_split(images_dir: Path, captions_file: Path, subset: float, seed: int, image_size: int,
               progress: bool = True) -> Split:
    """One split, from its memory-mapped cache when there is one (else decoded into it)."""
    folder = cache_dir("coco", _cache_key(images_dir, captions_file, subset, seed, image_size))
    meta_file, data_file = folder / "meta.json", folder / "images.u8"
    if not meta_file.is_file():
        _build_cache(images_dir, captions_file, subset, seed, image_size, folder, progress)
    meta = json.loads(meta_file.read_text())
    _warn_skipped(meta["skipped"], images_dir)
    shape = (meta["count"], 3, image_size, image_size)
    if meta["count"] == 0:
        raise DataError(f"No image in '{images_dir}' could be read (of {len(meta['skipped'])} listed "
                        f"in '{captions_file}').")
    images = torch.from_file(str(data_file), shared=False, size=int(np.prod(shape)),
                             dtype=torch.uint8).view(shape)
    return Split(images, meta["captions"])


def _cache_key(images_dir: Path, captions_file: Path, subset: float, seed: int, image_size: int) -> str:
    st = captions_file.stat()
    ident = [CACHE_VERSION, str(images_dir.resolve()), str(captions_file.resolve()),
             st.st_size, st.st_mtime_ns, subset, seed, image_size]
    digest = hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:16]
    return f"{images_dir.name}-{image_size}px-{digest}"


def select_images(captions_file: Path, subset: float, seed: int) -> tuple[list[str], list[list[str]]]:
    """File names and captions of the images kept: a `subset` fraction, drawn with `seed`,
    of those with at least one caption, in id order."""
    COCO = require("pycocotools.coco", "coco", "Dataset 'coco_captions'").COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco = COCO(str(captions_file))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"'{captions_file}' is not a COCO captions file ({type(exc).__name__}: {exc}).") from None
    ids = sorted(i for i in coco.getImgIds() if coco.imgToAnns.get(i))
    keep = max(1, round(len(ids) * subset)) if ids else 0
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:keep]
    chosen = [ids[i] for i in sorted(order.tolist())]
    files = [coco.imgs[i]["file_name"] for i in chosen]
    captions = [[a["caption"].strip() for a in coco.imgToAnns[i]] for i in chosen]
    return files, captions


def decode(path: Path, size: int) -> np.ndarray | None:
    """An image centre-cropped and resized to size x size, as uint8 [3, size, size];
    None when it cannot be read."""
    from torchvision.transforms.v2 import functional as TF

    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # let the JPEG decoder downscale (2x, 4x, 8x) for free
            img = img.convert("RGB")
        img = TF.center_crop(TF.resize(img, size, antialias=True), size)
        return np.asarray(img).transpose(2, 0, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _build_cache(images_dir: Path, captions_file: Path, subset: float, seed: int, image_size: int,
                 folder: Path, progress: bool) -> None:
    """Decode the chosen images once into `folder`/images.u8; write meta.json last (it marks
    the cache complete), both atomically."""
    files, captions = select_images(captions_file, subset, seed)
    row = 3 * image_size * image_size
    tmp = folder / f".images.{os.getpid()}.tmp"
    out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(max(len(files), 1), row))
    kept, kept_captions, skipped = 0, [], []
    columns = [TextColumn(f"decoding {images_dir.name}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar, \
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        task = bar.add_task("decode", total=len(files))
        results = pool.map(lambda f: decode(images_dir / f, image_size), files)
        for name, caps, image in zip(files, captions, results):
            if image is None:
                skipped.append(name)
            else:
                out[kept] = image.reshape(-1)
                kept_captions.append(caps)
                kept += 1
            bar.advance(task)
    out.flush()
    del out
    os.truncate(tmp, kept * row)
    os.replace(tmp, folder / "images.u8")
    meta = {"version": CACHE_VERSION, "count": kept, "image_size": image_size,
            "captions": kept_captions, "skipped": skipped}
    tmp_meta = folder / f".meta.{os.getpid()}.tmp"
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, folder / "meta.json")


def _warn_skipped(skipped: list[str], images_dir: Path) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"Skipped {len(skipped)} unreadable image(s) in '{images_dir}': {shown}",
                      SkippedImagesWarning, stacklevel=3)
