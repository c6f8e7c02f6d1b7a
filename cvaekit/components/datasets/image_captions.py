"""Pictures with captions, in the Hugging Face `imagefolder` layout or named by a CSV/JSONL file.

The layout: a folder with the images and a `metadata.jsonl` (or `metadata.csv`) whose
`file_name` column names each image (relative to the folder) and whose caption column (named
by the recipe) holds one caption or a list of them; a CSV repeats the row for each further
caption. With `train/` and `test/` (or `validation/`) folders inside, each in that layout,
those are the splits; otherwise a `test_fraction` of the images, drawn with `seed`, is the
test split. Instead of a folder, `metadata` can name any CSV/JSONL file whose image column
holds paths (relative to that file, or absolute). Decoded once into the memory-mapped cache
(cvaekit.image_cache); several captions per image work as on COCO.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

from cvaekit.caches.images import FileReader
from cvaekit.components.datasets.common import (
    Channels,
    Fit,
    as_captions,
    cached_split,
    check_image_keys,
    split_indices,
)
from cvaekit.core.data import DataSource
from cvaekit.errors import DataError, RecipeError
from cvaekit.recipe import PositiveInt

METADATA = ("metadata.jsonl", "metadata.csv")
TEST_FOLDERS = ("test", "validation")


def image_captions(root: str | None = None, metadata: str | None = None, test_metadata: str | None = None,
                   caption_column: str = "text", image_column: str = "file_name",
                   caption: Literal["random", "first"] = "random", image_size: PositiveInt = 64,
                   channels: Channels = 3, fit: Fit = "crop", test_fraction: float = 0.1, seed: int = 0,
                   progress: bool = True, workers: PositiveInt | None = None) -> DataSource:
    """Captioned pictures: an `imagefolder` folder (`root`) or a CSV/JSONL file (`metadata`).

    root: a folder with metadata.jsonl or metadata.csv beside the images (or train/ and test/ folders, each so).
    metadata: instead of root, a CSV or JSONL file whose image column names image paths.
    test_metadata: with metadata, the test split's file (else test_fraction of the images).
    caption_column: the column holding each image's caption (text, or a list of texts).
    image_column: the column naming each image's file.
    caption: which caption of an image a training batch uses: a random one, or the first.
    image_size: the side of the square each picture is fitted to.
    channels: 1 (grey) or 3 (RGB).
    fit: 'crop' (centre-crop to a square) or 'pad' (keep the whole picture, pad with black).
    test_fraction: the share of images held out for testing when no test split is given.
    seed: draws the test split when it is cut from the training images.
    progress: show a progress bar while decoding.
    workers: processes that decode (default: one per core)."""
    check_image_keys(image_size, test_fraction)
    train_file, test_file = _metadata_files(root, metadata, test_metadata)
    columns = (image_column, caption_column)
    train = read_metadata(train_file, *columns)
    keys = dict(image_size=image_size, channels=channels, fit=fit, progress=progress, workers=workers)
    ident = _ident(train_file, columns)
    if test_file is not None:
        parts = [(train, ident, train_file), (read_metadata(test_file, *columns), _ident(test_file, columns), test_file)]
    else:
        train_at, test_at = split_indices(len(train), test_fraction, seed)
        parts = [([train[i] for i in at], [ident, name, test_fraction, seed], train_file)
                 for name, at in (("train", train_at), ("test", test_at))]
    splits = []
    for (rows, split_ident, file), name, pick in zip(parts, ("train", "test"), (caption, "first")):
        def source(rows=rows):
            return FileReader([p for p, _ in rows]), [caps for _, caps in rows]

        label = f"{file.parent.name}_{name}"
        splits.append(cached_split("image_captions", label, split_ident, source, file, labelled=False,
                                   caption=pick, **keys))
    return DataSource(splits[0], splits[1])


def _metadata_files(root: str | None, metadata: str | None,
                    test_metadata: str | None) -> tuple[Path, Path | None]:
    """The train and (if any) test metadata files the keys name."""
    if metadata:
        for key, value in (("metadata", metadata), ("test_metadata", test_metadata)):
            if value and not Path(value).is_file():
                raise DataError(f"The captions file '{value}' (data.{key}) does not exist.")
        return Path(metadata), Path(test_metadata) if test_metadata else None
    if test_metadata:
        raise RecipeError("'data.test_metadata' goes with 'data.metadata'; with 'data.root' the test "
                          f"split is the folder's {' or '.join(TEST_FOLDERS)}/ folder.")
    if not root:
        raise RecipeError("Data set 'image_captions' needs 'data.root' (a folder with images and "
                          f"{' or '.join(METADATA)}) or 'data.metadata' (a CSV or JSONL file naming images).")
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"The image folder '{root}' (data.root) does not exist.")
    if _find(base / "train"):
        test = next((f for f in map(_find, (base / t for t in TEST_FOLDERS)) if f), None)
        return _find(base / "train"), test
    found = _find(base)
    if found is None:
        raise DataError(f"'{root}' (data.root) has no {' or '.join(METADATA)} (nor train/ with one): "
                        f"write one with a 'file_name' column and a caption column, one row per image.")
    return found, None


def _find(folder: Path) -> Path | None:
    return next((folder / m for m in METADATA if (folder / m).is_file()), None)


def _ident(file: Path, columns: tuple[str, str]) -> list:
    st = file.stat()
    return ["image_captions", str(file.resolve()), st.st_size, st.st_mtime_ns, *columns]


def read_metadata(file: Path, image_column: str, caption_column: str) -> list[tuple[Path, list[str]]]:
    """(image path, its captions) per image, in file order; the rows naming the same image
    are merged. Errors name the file, the line and the column."""
    rows = list(_rows(file))
    if not rows:
        raise DataError(f"The captions file '{file}' has no rows.")
    for column, key in ((image_column, "image_column"), (caption_column, "caption_column")):
        if not any(column in row for _, row in rows):
            found = sorted({k for _, row in rows for k in row})
            raise DataError(f"The captions file '{file}' has no column '{column}' (data.{key}); "
                            f"its columns: {', '.join(found) or '(none)'}.")
    images: dict[Path, list[str]] = {}
    for line, row in rows:
        name = row.get(image_column)
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"Line {line} of '{file}' names no image in column '{image_column}' "
                            f"(found {name!r}).")
        texts = as_captions(row.get(caption_column), f"Line {line} of '{file}'", caption_column)
        images.setdefault(file.parent / name.strip(), []).extend(texts)
    kept = [(path, caps) for path, caps in images.items() if caps]
    if not kept:
        example = next((row.get(caption_column) for _, row in rows), None)
        raise DataError(f"The caption column '{caption_column}' of '{file}' holds no text "
                        f"(found e.g. {example!r}); give the column with the captions as 'data.caption_column'.")
    return kept


def _rows(file: Path):
    """(line number, row as a dict) of a JSONL or CSV file."""
    if file.suffix.lower() == ".jsonl":
        with open(file, encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"Line {number} of '{file}' is not JSON ({exc.msg} at column {exc.colno}): "
                                    f"{text.strip()[:80]!r}") from None
                if not isinstance(row, dict):
                    raise DataError(f"Line {number} of '{file}' must be a JSON object with named columns, "
                                    f"got {text.strip()[:80]!r}.")
                yield number, row
    elif file.suffix.lower() == ".csv":
        with open(file, encoding="utf-8", newline="") as handle:
            try:
                reader = csv.DictReader(handle)
                for row in reader:
                    yield reader.line_num, {k: v for k, v in row.items() if k is not None}
            except csv.Error as exc:
                raise DataError(f"'{file}' is not a readable CSV file ({exc}).") from None
    else:
        raise DataError(f"The captions file '{file}' must be .jsonl or .csv, not '{file.suffix}'.")
