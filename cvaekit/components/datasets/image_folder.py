"""A labelled folder of pictures in torchvision's `ImageFolder` layout: `root/<class>/<image>`.

The class names are the folder names, so the one-hot conditioner and `cvaekit generate RUN
<class>` work on it as on Fashion-MNIST. `root/train/<class>/...` with `root/test/<class>/...`
beside it gives the two splits; otherwise a `test_fraction` of the images, drawn with `seed`,
is the test split. Decoded once into the memory-mapped cache (cvaekit.image_cache).

A picture is a file with one of torchvision's image extensions (`EXTENSIONS`); any other
file, and any file outside a class folder, is left out and named in an `IgnoredFilesWarning`
(hidden files, such as .DS_Store, quietly). A picture that cannot be decoded is skipped and
named in a `SkippedImagesWarning`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from cvaekit.caches.images import FileReader, IgnoredFilesWarning
from cvaekit.components.datasets.common import (
    Channels,
    Fit,
    cached_split,
    check_image_keys,
    split_indices,
)
from cvaekit.core.data import DataSource
from cvaekit.errors import DataError, RecipeError
from cvaekit.recipe import PositiveInt

LAYOUT = "root/<class>/<image> (or root/train/<class>/... and root/test/<class>/...)"
EXTENSIONS = tuple(IMG_EXTENSIONS)  # what counts as a picture (case does not matter)


def image_folder(root: str | None = None, image_size: PositiveInt = 64, channels: Channels = 3,
                 fit: Fit = "crop", test_fraction: float = 0.1, seed: int = 0, progress: bool = True,
                 workers: PositiveInt | None = None) -> DataSource:
    """Pictures sorted into one folder per class; the folder names are the class names.

    root: the folder, laid out as root/<class>/<image>, or with train/ and test/ inside.
    image_size: the side of the square each picture is fitted to.
    channels: 1 (grey) or 3 (RGB).
    fit: 'crop' (centre-crop to a square) or 'pad' (keep the whole picture, pad with black).
    test_fraction: the share of images held out for testing when there is no test/ folder.
    seed: draws the test split when it is cut from the training images.
    progress: show a progress bar while decoding.
    workers: processes that decode (default: one per core)."""
    check_image_keys(image_size, test_fraction)
    if not root:
        raise RecipeError(f"Data set 'image_folder' needs 'data.root': a folder laid out as {LAYOUT}.")
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"The image folder '{root}' (data.root) does not exist; it must be laid out as {LAYOUT}.")
    keys = dict(image_size=image_size, channels=channels, fit=fit, progress=progress, workers=workers)
    if (base / "train").is_dir():
        train = _listing(base / "train")
        train_files, classes = train.samples, train.classes
        if (base / "test").is_dir():
            test = _listing(base / "test")
            unknown = sorted(set(test.classes) - set(classes))
            if unknown:
                raise DataError(f"'{base / 'test'}' has classes that '{base / 'train'}' lacks: "
                                f"{', '.join(unknown)}. Train classes: {', '.join(classes)}.")
            test_files = [(p, classes.index(test.classes[y])) for p, y in test.samples]
            where = (base / "train", base / "test")
            parts = (train_files, test_files)
            idents = [_ident(base / "train", train_files), _ident(base / "test", test_files)]
            return _source(parts, idents, where, classes, keys)
    else:
        listing = _listing(base)
        train_files, classes = listing.samples, listing.classes
    train_at, test_at = split_indices(len(train_files), test_fraction, seed)
    folder = base / "train" if (base / "train").is_dir() else base
    whole = _ident(folder, train_files)
    parts = ([train_files[i] for i in train_at], [train_files[i] for i in test_at])
    idents = [[whole, "train", test_fraction, seed], [whole, "test", test_fraction, seed]]
    return _source(parts, idents, (folder, folder), classes, keys)


def _listing(folder: Path) -> ImageFolder:
    """The pictures of a labelled folder; the files it leaves out are named in a warning."""
    try:
        listing = ImageFolder(str(folder))
    except FileNotFoundError as exc:
        raise DataError(f"'{folder}' is not a labelled image folder ({exc}). It must be laid out as {LAYOUT}.") from None
    warn_ignored(folder, {os.path.normpath(p) for p, _ in listing.samples}, skip={"train", "test"})
    return listing


def warn_ignored(folder: Path, kept: set[str], skip: set[str] = frozenset()) -> None:
    """One warning naming the files under `folder` (hidden ones aside) that are not in `kept`:
    not pictures by their extension, or outside a class folder. `skip`: top-level folders
    that are not classes (train/, test/), not looked into."""
    ignored = []
    for base, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (base == str(folder) and d in skip))
        ignored += [os.path.join(base, f) for f in sorted(files)
                    if not f.startswith(".") and os.path.normpath(os.path.join(base, f)) not in kept]
    if ignored:
        shown = ", ".join(os.path.relpath(f, folder) for f in ignored[:5]) + (", ..." if len(ignored) > 5 else "")
        warnings.warn(f"Ignored {len(ignored)} file(s) in '{folder}' that are not pictures by their extension "
                      f"({' '.join(EXTENSIONS)}) or lie outside a class folder: {shown}",
                      IgnoredFilesWarning, stacklevel=5)


def _ident(folder: Path, files: list[tuple[str, int]]) -> list:
    """The folder, and a digest of every file's name, class, size and time: a changed picture
    is a new cache."""
    digest = hashlib.sha1()
    for path, label in files:
        st = os.stat(path)
        digest.update(f"{os.path.relpath(path, folder)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return ["image_folder", str(folder.resolve()), len(files), digest.hexdigest()]


def _source(parts, idents, where, classes: list[str], keys: dict) -> DataSource:
    splits = []
    for name, files, ident, place in zip(("train", "test"), parts, idents, where):
        def source(files=files):
            return FileReader([p for p, _ in files]), [y for _, y in files]

        label = f"{Path(place).name}_{name}"
        splits.append(cached_split("image_folder", label, ident, source, place, labelled=True, **keys))
    return DataSource(splits[0], splits[1], classes=list(classes))
