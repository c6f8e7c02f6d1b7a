"""torchvision's labelled image data sets by name (MNIST, KMNIST, CIFAR10, SVHN, ...), from a
local root laid out as torchvision's own download leaves it; class names from the data set.
Decoded once into the memory-mapped cache (cvaekit.image_cache), at the set's own size and
colour unless the recipe says otherwise."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cvaekit.caches.images import open_encoded
from cvaekit.caches.paths import cache_dir
from cvaekit.components.datasets.common import Fit, cached_split
from cvaekit.core.data import DataSource
from cvaekit.errors import DataError, RecipeError, choices_text, did_you_mean
from cvaekit.recipe import PositiveInt

# How each set names its two splits: the keyword, and its training and test values.
SETS: dict[str, tuple[str, Any, Any]] = {
    **{n: ("train", True, False) for n in ("MNIST", "FashionMNIST", "KMNIST", "QMNIST", "EMNIST",
                                            "USPS", "CIFAR10", "CIFAR100")},
    **{n: ("split", "train", "test") for n in ("SVHN", "STL10", "Flowers102", "Food101", "GTSRB", "DTD",
                                                "Country211", "PCAM", "RenderedSST2", "FER2013",
                                                "StanfordCars")},
    **{n: ("split", "trainval", "test") for n in ("OxfordIIITPet", "FGVCAircraft")},
    **{n: ("split", "train", "val") for n in ("Imagenette", "CLEVRClassification")},
    "Places365": ("split", "train-standard", "val"),
}
GREY_MODES = {"1", "L", "I", "I;16", "F"}


@dataclass
class SetReader:
    """Item i's image of a torchvision data set (built without transforms, so a PIL image)."""

    dataset: Any
    label: str

    def __len__(self) -> int:
        return len(self.dataset)

    def open(self, i: int):
        return open_encoded(self.dataset[i][0])

    def name(self, i: int) -> str:
        return f"{self.label}[{i}]"


def torchvision_dataset(dataset: str = "MNIST", root: str | None = None, download: bool = False,
                        image_size: PositiveInt | None = None, channels: Literal[1, 3] | None = None,
                        fit: Fit = "crop", train_split: str | None = None, test_split: str | None = None,
                        options: dict | None = None, progress: bool = True,
                        workers: PositiveInt | None = None) -> DataSource:
    """A torchvision labelled image data set by class name.

    dataset: the torchvision.datasets class: MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN, ...
    root: the folder torchvision reads it from (default: cvaekit's cache, data/torchvision).
    download: let torchvision fetch the files into root when they are not there (needs the network).
    image_size: the side of the square each image is fitted to (default: the set's own, its shorter side).
    channels: 1 (grey) or 3 (RGB) (default: the set's own).
    fit: 'crop' (centre-crop to a square) or 'pad' (keep the whole image, pad with black).
    train_split: for sets with splits by name, the training one (default: the set's usual one).
    test_split: the same for the test split.
    options: further keyword arguments for the data set class (EMNIST needs {split: balanced}, say).
    progress: show a progress bar while decoding.
    workers: processes that decode (default: one per core)."""
    import torchvision.datasets as tv

    name = dataset
    _check_set_and_size(name, image_size)
    cls = getattr(tv, name)
    keyword, train_value, test_value = _split_values(name, train_split, test_split)
    base = Path(root) if root else cache_dir("data", "torchvision")
    extra = _checked_options(cls, name, options, keyword)
    sets = _open_sets(cls, name, base, keyword, (train_value, test_value), download, extra)
    first = sets[0][0][0]
    size = image_size or min(first.size)
    colour = channels or (1 if first.mode in GREY_MODES else 3)
    targets = [_targets(s) for s in sets]
    classes = _class_names(sets[0], targets)
    keys = dict(image_size=size, channels=colour, fit=fit, progress=progress, workers=workers, labelled=True)
    splits = []
    for ds, value, labels in zip(sets, (train_value, test_value), targets):
        ident = ["torchvision", name, str(base.resolve()), keyword, value, extra, len(ds)]
        label = f"{name}_{value if keyword == 'split' else ('train' if value else 'test')}"

        def source(ds=ds, labels=labels, label=label):
            return SetReader(ds, label), labels

        splits.append(cached_split("torchvision", label, ident, source, f"{name} in {base}", **keys))
    return DataSource(splits[0], splits[1], classes=classes, aliases=_aliases(classes))


def _check_set_and_size(name: str, image_size: int | None) -> None:
    """Refuse a recipe's mistakes before torchvision touches the disk."""
    if name not in SETS:
        raise RecipeError(f"'data.dataset': '{name}' is not one of torchvision's labelled image sets."
                          f"{did_you_mean(name, SETS)} Choices: {choices_text(SETS)}.")
    if image_size is not None and image_size < 8:
        raise RecipeError(f"'data.image_size' must be at least 8 pixels, got {image_size}.")


def _split_values(name: str, train_split: str | None, test_split: str | None) -> tuple[str, Any, Any]:
    """The split keyword and its training and test values; named splits may be overridden."""
    keyword, train_value, test_value = SETS[name]
    if keyword == "split":
        train_value, test_value = train_split or train_value, test_split or test_value
    elif train_split or test_split:
        raise RecipeError(f"torchvision's {name} splits by train=True/False; 'data.train_split' and "
                          "'data.test_split' are for sets with named splits.")
    return keyword, train_value, test_value


def _checked_options(cls, name: str, options: dict | None, keyword: str) -> dict:
    """The extra keywords, refused by name (with the ones it takes) rather than as a TypeError."""
    extra = dict(options or {})
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(extra) - set(accepted))
    if unknown:
        raise RecipeError(f"'data.options' for {name}: unknown {', '.join(unknown)}. "
                          f"It takes: {choices_text(p for p in accepted if p not in ('self', 'root', keyword))}.")
    return extra


def _open_sets(cls, name: str, base: Path, keyword: str, values: tuple[Any, Any], download: bool,
               extra: dict) -> list:
    """The training and test sets; missing files become a DataError that says where to put them."""
    sets = []
    for value in values:
        try:
            sets.append(cls(str(base), **{keyword: value}, download=download, **extra))
        except (RuntimeError, OSError, ValueError) as exc:
            raise DataError(f"torchvision's {name} ({keyword}={value!r}) was not found in '{base}' (data.root) "
                            f"({type(exc).__name__}: {exc}). {_where(cls, name, base)} or set 'data.download: "
                            f"true' to let torchvision fetch them (needs the network).") from None
    return sets


def _aliases(classes: list[str]) -> dict[str, str]:
    """'7 - seven' (MNIST's way of naming) is also '7' and 'seven'."""
    return {part.strip(): c for c in classes if " - " in c for part in c.split(" - ") if part.strip()}


def _targets(ds) -> list[int]:
    """Every item's label, from the attribute the set keeps them in (read item by item otherwise)."""
    for attr in ("targets", "labels", "_labels"):
        values = getattr(ds, attr, None)
        if values is not None and len(values) == len(ds):
            return [int(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
    samples = getattr(ds, "_samples", None)
    if samples is not None and len(samples) == len(ds):
        return [int(s[1]) for s in samples]
    return [int(ds[i][1]) for i in range(len(ds))]


def _class_names(ds, targets: list[list[int]]) -> list[str]:
    names = getattr(ds, "classes", None)
    if names:
        return [str(c) for c in names]
    top = max(max(t, default=0) for t in targets)
    return [str(i) for i in range(top + 1)]


def _where(cls, name: str, base: Path) -> str:
    """Where torchvision looks for the files, and which they are, as far as the class says."""
    files = [Path(str(r[0] if isinstance(r, (tuple, list)) else r)).name
             for r in getattr(cls, "resources", [])]
    if getattr(cls, "filename", None):
        files.append(cls.filename)
    if hasattr(cls, "raw_folder"):  # the MNIST family
        folder = base / name / "raw"
    elif getattr(cls, "base_folder", None):
        folder = base / cls.base_folder
    else:
        folder = base
    listed = f" ({', '.join(files)})" if files else ""
    return f"Put its files{listed} in '{folder}' as torchvision's download leaves them,"
