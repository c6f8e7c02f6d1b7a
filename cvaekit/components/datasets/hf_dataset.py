"""A data set of the Hugging Face `datasets` library, by hub id or local path.

A folder written by `save_to_disk` is opened with `load_from_disk`; anything else (a hub id,
a local `imagefolder`, a folder of data files) goes through `load_dataset`, which reads the
hub's copy from the local cache when it is there (set HF_HUB_OFFLINE=1 to never reach the
network). The recipe names the split(s), the image column, and a label column (a
`ClassLabel` gives the class names) or a caption column. Decoded once into the
memory-mapped cache (cvaekit.image_cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cvaekit.caches.images import open_encoded
from cvaekit.caches.paths import cache_dir
from cvaekit.components.datasets.common import (
    Channels,
    Fit,
    as_captions,
    cached_split,
    check_image_keys,
    split_indices,
)
from cvaekit.core.data import DataSource, Split
from cvaekit.errors import (
    CvaekitError,
    DataError,
    RecipeError,
    choices_text,
    did_you_mean,
)
from cvaekit.recipe import PositiveInt
from cvaekit.runtime.optional import require

TEST_SPLITS = ("test", "validation")


@dataclass
class RowReader:
    """Image `rows[i]` of a data set whose image column is left undecoded (bytes or a path)."""

    dataset: Any
    column: str
    rows: list[int]
    label: str

    def __len__(self) -> int:
        return len(self.rows)

    def open(self, i: int):
        return open_encoded(self.dataset[self.rows[i]][self.column])

    def name(self, i: int) -> str:
        return f"{self.label} row {self.rows[i]}"


def hf_dataset(path: str | None = None, config: str | None = None, split: str = "train",
               test_split: str | None = None, image_column: str = "image", label_column: str | None = None,
               caption_column: str | None = None, caption: Literal["random", "first"] = "random",
               revision: str | None = None, image_size: PositiveInt = 64, channels: Channels = 3,
               fit: Fit = "crop", test_fraction: float = 0.1, seed: int = 0, progress: bool = True,
               workers: PositiveInt | None = None) -> DataSource:
    """A `datasets` data set: a hub id or a local path (a save_to_disk folder, an imagefolder).

    path: a hub id ('user/name') or a local folder.
    config: the hub data set's configuration (its 'name' in load_dataset), if it has several.
    split: the training split.
    test_split: the test split (default: 'test' or 'validation' when there is one, else test_fraction of split).
    image_column: the column holding the images.
    label_column: a column of labels (class names from a ClassLabel feature, else from the values).
    caption_column: instead of label_column, a column of captions (text, or a list of texts).
    caption: which caption of an image a training batch uses: a random one, or the first.
    revision: the hub revision (branch, tag or commit) to use.
    image_size: the side of the square each picture is fitted to.
    channels: 1 (grey) or 3 (RGB).
    fit: 'crop' (centre-crop to a square) or 'pad' (keep the whole picture, pad with black).
    test_fraction: the share of images held out for testing when there is no test split.
    seed: draws the test split when it is cut from the training images.
    progress: show a progress bar while decoding.
    workers: processes that decode (default: one per core)."""
    check_image_keys(image_size, test_fraction)
    if not path:
        raise RecipeError("Data set 'hf_dataset' needs 'data.path': a hub id or a local folder.")
    if (label_column is None) == (caption_column is None):
        raise RecipeError("Data set 'hf_dataset' needs exactly one of 'data.label_column' (labelled images) "
                          "and 'data.caption_column' (captioned images).")
    datasets = require("datasets", "hf", "Data set 'hf_dataset'")
    loaded = _load(datasets, path, config, revision)
    train, test, cut = _splits(datasets, loaded, path, split, test_split)
    column = label_column or caption_column
    for ds, which in ((train, split), (test, test_split)):
        if ds is None:
            continue
        for col, key in ((image_column, "image_column"), (column, "label_column" if label_column else "caption_column")):
            if col not in ds.column_names:
                raise DataError(f"The data set '{path}' (split '{which}') has no column '{col}' (data.{key})."
                                f"{did_you_mean(col, ds.column_names)} Its columns: {choices_text(ds.column_names)}.")
    keys = dict(image_size=image_size, channels=channels, fit=fit, progress=progress, workers=workers)
    classes = _classes(train, label_column) if label_column else None
    parts = []
    if test is None:
        rows = _usable_rows(train, column, classes, path, split)
        train_at, test_at = split_indices(len(rows), test_fraction, seed)
        cut_ident = [test_fraction, seed]
        parts = [(train, split, [rows[i] for i in train_at], ["train", *cut_ident]),
                 (train, split, [rows[i] for i in test_at], ["test", *cut_ident])]
    else:
        parts = [(ds, which, _usable_rows(ds, column, classes, path, which), [which])
                 for ds, which in ((train, split), (test, cut))]
    splits = []
    for (ds, which, rows, extra), pick in zip(parts, (caption, "first")):
        splits.append(_cached(datasets, ds, which, rows, extra, path, config, image_column, column,
                              classes, pick, keys))
    return DataSource(splits[0], splits[1], classes=classes)


def _load(datasets, path: str, name: str | None, revision: str | None):
    folder = Path(path).expanduser()
    try:
        if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
            return datasets.load_from_disk(str(folder))
        return datasets.load_dataset(path, name, revision=revision, cache_dir=str(cache_dir("hf-datasets")))
    except CvaekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds; each means 'not loadable'
        where = "folder" if folder.exists() else "hub id (not in the local cache, and not downloadable)"
        raise DataError(f"The Hugging Face data set '{path}' (data.path, a {where}) could not be loaded "
                        f"({type(exc).__name__}: {exc}).") from None


def _splits(datasets, loaded, path: str, split: str, test_split: str | None):
    """(train, test or None, test split's name): None means cut test_fraction from train."""
    if isinstance(loaded, datasets.Dataset):
        if test_split:
            raise DataError(f"'{path}' is a single data set with no splits, so 'data.test_split' "
                            f"('{test_split}') cannot be found; leave it out to use 'data.test_fraction'.")
        return loaded, None, None
    names = list(loaded)
    if split not in loaded:
        raise DataError(f"The data set '{path}' has no split '{split}' (data.split).{did_you_mean(split, names)} "
                        f"Its splits: {choices_text(names)}.")
    if test_split is not None:
        if test_split not in loaded:
            raise DataError(f"The data set '{path}' has no split '{test_split}' (data.test_split)."
                            f"{did_you_mean(test_split, names)} Its splits: {choices_text(names)}.")
        return loaded[split], loaded[test_split], test_split
    found = next((s for s in TEST_SPLITS if s in loaded and s != split), None)
    return loaded[split], loaded[found] if found else None, found


def _classes(ds, column: str) -> list[str]:
    feature = ds.features[column]
    names = getattr(feature, "names", None)
    if names:
        return list(names)
    values = sorted({str(v) for v in ds[column] if v is not None})
    if not values:
        raise DataError(f"The label column '{column}' holds no labels.")
    return values


def _usable_rows(ds, column: str, classes: list[str] | None, path: str, which: str) -> list[int]:
    """The rows that have a label or at least one caption."""
    values = ds[column]
    if classes is not None:
        rows = [i for i, v in enumerate(values) if v is not None and (not isinstance(v, int) or v >= 0)]
    else:
        rows = [i for i, v in enumerate(values) if as_captions(v, f"'{path}' split '{which}' row {i}", column)]
    if not rows:
        kind = "label" if classes is not None else "caption"
        raise DataError(f"The {kind} column '{column}' of '{path}' (split '{which}') holds no "
                        f"{'labels' if classes is not None else 'text'} (found e.g. {values[:1]!r}).")
    return rows


def _cached(datasets, ds, which: str, rows: list[int], extra: list, path: str, name: str | None,
            image_column: str, column: str, classes: list[str] | None, pick: str, keys: dict) -> Split:
    ident = ["hf_dataset", str(Path(path).expanduser().resolve()) if Path(path).exists() else path, name,
             which, ds._fingerprint, image_column, column, *extra]

    def source():
        raw = ds.select_columns([image_column])
        if isinstance(raw.features[image_column], datasets.Image):
            raw = raw.cast_column(image_column, datasets.Image(decode=False))
        values = ds[column]
        if classes is None:
            conditions = [as_captions(values[i], path, column) for i in rows]
        elif isinstance(ds.features[column], datasets.ClassLabel):
            conditions = [int(values[i]) for i in rows]
        else:
            index = {c: k for k, c in enumerate(classes)}
            unknown = sorted({str(values[i]) for i in rows} - set(index))
            if unknown:
                raise DataError(f"Split '{which}' of '{path}' has labels the training split lacks: {', '.join(unknown[:5])}.")
            conditions = [index[str(values[i])] for i in rows]
        return RowReader(raw, image_column, rows, f"{Path(path).name} {which}"), conditions

    label = f"{Path(path).name}_{which}_{extra[0]}"
    return cached_split("hf_dataset", label, ident, source, f"{path} ({which})", labelled=classes is not None,
                        caption=pick, **keys)
