"""Fashion-MNIST through torchvision, found locally first: recipe root, Debian, download."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import torch
from torchvision.datasets import FashionMNIST

from cvaekit.caches.paths import cache_dir
from cvaekit.core.data import DataSource, Split, as_uint8_images
from cvaekit.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Words people use for each class, beyond the class names themselves.
ALIASES = {
    "tshirt": "T-shirt/top", "tee": "T-shirt/top", "tee shirt": "T-shirt/top", "t shirt": "T-shirt/top",
    "trousers": "Trouser", "pants": "Trouser", "jeans": "Trouser", "slacks": "Trouser",
    "sweater": "Pullover", "jumper": "Pullover", "sweatshirt": "Pullover", "hoodie": "Pullover",
    "gown": "Dress", "frock": "Dress",
    "jacket": "Coat", "overcoat": "Coat", "parka": "Coat",
    "sandals": "Sandal", "flip flop": "Sandal", "flip flops": "Sandal",
    "blouse": "Shirt", "button shirt": "Shirt",
    "sneakers": "Sneaker", "trainer": "Sneaker", "trainers": "Sneaker", "running shoe": "Sneaker",
    "handbag": "Bag", "purse": "Bag", "tote": "Bag", "backpack": "Bag",
    "boot": "Ankle boot", "boots": "Ankle boot", "ankle boots": "Ankle boot",
}


def _find_raw(root: str | None) -> Path | None:
    """The folder holding the four files (plain or .gz): under the recipe's root when it
    gives one (so it is never silently swapped for other data), else under Debian's."""
    folder = Path(root) if root else DEBIAN_DIR
    for raw in (folder / "FashionMNIST" / "raw", folder / "raw", folder):
        if all((raw / f).is_file() or (raw / f"{f}.gz").is_file() for f in FILES):
            return raw
    return None


def _torchvision_root(raw: Path) -> Path:
    """A root whose FashionMNIST/raw holds the four plain files: `raw`'s own when it is laid
    out so, else a copy extracted once into the cache."""
    if raw.name == "raw" and raw.parent.name == "FashionMNIST" and all((raw / f).is_file() for f in FILES):
        return raw.parent.parent
    target = cache_dir("data", "fashion-mnist")
    out = target / "FashionMNIST" / "raw"
    out.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        if not (out / f).is_file():
            src = raw / f
            data = src.read_bytes() if src.is_file() else gzip.decompress((raw / f"{f}.gz").read_bytes())
            tmp = out / f".{f}.{os.getpid()}.tmp"  # two processes may extract at once
            tmp.write_bytes(data)
            tmp.replace(out / f)
    return target

HOW_TO_GET = ("Get it either way: 'apt-get install dataset-fashion-mnist' (Debian, offline), or put the "
              f"four files {', '.join(FILES)} (or .gz) in a folder and set 'data.root' to it.")


def torchvision_root(root: str | None = None) -> Path:
    """The folder to give torchvision's FashionMNIST (its data found or extracted first)."""
    raw = _find_raw(root)
    return _torchvision_root(raw) if raw else Path(root or cache_dir("data"))


def fashion_mnist(root: str | None = None, download: bool = True,
                  binarize: bool | Literal["static", "dynamic"] = False) -> DataSource:
    """Fashion-MNIST 28x28 grey, 60k train / 10k test, 10 labelled classes.

    Without `root`, Debian's package `dataset-fashion-mnist`, then a torchvision download
    into the cache, are tried.

    root: a folder with the four files (plain or .gz), or where torchvision downloads them.
    download: let torchvision download the files when they are not found.
    binarize: each pixel 0 or 255, drawn once with its grey value as the probability (true or static: static binarization, seed 0), as test log-likelihoods in the literature are reported on; dynamic: the test split the same, training pixels drawn anew at every step (dynamic binarization, which overfits less)."""
    if root and not Path(root).is_dir():
        raise DataError(f"The Fashion-MNIST folder '{root}' (data.root) does not exist. {HOW_TO_GET}")
    base = torchvision_root(root)
    try:
        splits = [FashionMNIST(str(base), train=t, download=download) for t in (True, False)]
    except Exception as exc:  # noqa: BLE001 - any failure here means 'no data'
        raise DataError(
            f"Fashion-MNIST was not found (looked in {root or DEBIAN_DIR}) and "
            f"could not be downloaded ({type(exc).__name__}: {exc}). {HOW_TO_GET}") from None
    images = [as_uint8_images(s.data) for s in splits]
    dynamic = binarize == "dynamic"
    if binarize:
        gen = torch.Generator().manual_seed(0)  # the training split drawn first either way: one test set
        drawn = [(torch.rand(x.shape, generator=gen) < x.float() / 255).to(torch.uint8) * 255 for x in images]
        images = [images[0], drawn[1]] if dynamic else drawn
    train, test = (Split(x, s.targets.long(), binarize=dynamic and s.train) for x, s in zip(images, splits))
    return DataSource(train, test, classes=list(splits[0].classes), aliases=ALIASES)
