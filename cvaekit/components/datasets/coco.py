"""MS-COCO captions (2017 layout) through pycocotools: the study's long-text data.

Each image is centre-cropped and resized to `image_size` once, into the memory-mapped
uint8 cache of cvaekit.image_cache (under `cache_dir("coco", ...)`): later epochs and runs
index that file and never decode a JPEG again. An image that cannot be read is skipped,
and the number skipped is reported as a warning.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Literal

import torch

from cvaekit.caches.images import (
    FileReader,
    SkippedImagesWarning,
    cached_images,
    warn_skipped,
)
from cvaekit.core.data import DataSource, Split
from cvaekit.errors import DataError, RecipeError
from cvaekit.runtime.optional import require

__all__ = ["SkippedImagesWarning", "coco_captions", "load_split", "select_images"]
LAYOUT = ("train2017", "annotations/captions_train2017.json",
          "val2017", "annotations/captions_val2017.json")

HOW_TO_GET = ("Get MS-COCO 2017 from https://cocodataset.org (train2017.zip, val2017.zip, "
              "annotations_trainval2017.zip), unpack them into one folder and give it as 'data.root' "
              f"(it must hold {', '.join(LAYOUT)}): --set data.root=/data/coco.")


def coco_captions(root: str | None = None,
                  train_images: str | None = None, train_captions: str | None = None,
                  test_images: str | None = None, test_captions: str | None = None,
                  subset: float = 1.0, test_subset: float = 1.0,
                  caption: Literal["random", "first"] = "random",
                  image_size: int = 224, seed: int = 0, progress: bool = True) -> DataSource:
    """MS-COCO images with their captions (5 per image), centre-cropped to `image_size`.

    Give `root` or the four paths (each one given wins over `root`). Test batches always
    use each image's first caption.

    root: a folder holding train2017/, val2017/ and annotations/captions_*2017.json.
    train_images: the folder of training images (default: root/train2017).
    train_captions: the training captions file (default: root/annotations/captions_train2017.json).
    test_images: the folder of test images (default: root/val2017).
    test_captions: the test captions file (default: root/annotations/captions_val2017.json).
    subset: the fraction of training images kept, drawn with `seed` (the study used 0.1).
    test_subset: the fraction of test images kept, drawn with `seed`.
    caption: the caption a training batch uses: 'random' (one of the image's) or 'first'.
    image_size: the side in pixels of the square each image is cropped and resized to (at least 8).
    seed: draws the images that `subset` and `test_subset` keep.
    progress: show a progress bar while images are decoded into the cache."""
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
    st = captions_file.stat()
    ident = ["coco", str(images_dir.resolve()), str(captions_file.resolve()), st.st_size, st.st_mtime_ns,
             subset, seed]

    def source():  # the captions file is read only when the cache must be built
        files, captions = select_images(captions_file, subset, seed)
        return FileReader([images_dir / f for f in files]), captions

    cache = cached_images("coco", images_dir.name, ident, source, size=image_size, progress=progress)
    warn_skipped(cache.skipped, images_dir, missing=cache.missing)
    if not len(cache.images):
        raise DataError(f"No image in '{images_dir}' could be read (of {len(cache.skipped)} listed "
                        f"in '{captions_file}').")
    return Split(cache.images, cache.conditions)


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


