"""Small picture collections written by the tests, in the layouts users bring: a labelled
folder (torchvision's ImageFolder), a captioned imagefolder (metadata.jsonl), a
`datasets` data set saved with save_to_disk, and a torchvision MNIST root."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
CORRUPT = b"\xff\xd8\xff\xe0 this is not a jpeg" + bytes(64)


def picture(colour: str, k: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A flat picture of `colour` with a darker square whose place depends on k (so
    pictures of one colour differ)."""
    w, h = size
    a = np.empty((h, w, 3), np.uint8)
    a[:] = COLOURS[colour]
    x, y = (k * 7) % (w - 8), (k * 5) % (h - 8)
    a[y:y + 8, x:x + 8] //= 3
    return Image.fromarray(a)


def write_labelled_folder(root: Path, per_class: int = 8, corrupt: int = 0, split: bool = False) -> Path:
    """root/<colour>/<k>.png (or root/train/... and root/test/... with `split`); the last
    `corrupt` files of the first class unreadable."""
    parts = {"train": per_class, "test": max(2, per_class // 4)} if split else {"": per_class}
    for part, n in parts.items():
        for c, colour in enumerate(COLOURS):
            folder = root / part / colour if part else root / colour
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                size = (40, 30) if k % 2 else (30, 40)
                picture(colour, k, size).save(folder / f"{k:03d}.png")
            if c == 0 and part in ("", "train"):
                for k in range(corrupt):
                    (folder / f"broken{k}.jpg").write_bytes(CORRUPT)
    return root


def captions_of(colour: str, k: int) -> list[str]:
    return [f"a {colour} picture", f"something {colour} with a dark square", f"all {colour} number {k}"]


def write_caption_folder(root: Path, n: int = 24, corrupt: int = 0) -> Path:
    """root/<k>.jpg and root/metadata.jsonl (file_name, text: a list of three captions)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        colour = list(COLOURS)[k % len(COLOURS)]
        name = f"{k:03d}.jpg"
        picture(colour, k).save(root / name, quality=95)
        rows.append({"file_name": name, "text": captions_of(colour, k)})
    for k in range(corrupt):
        (root / f"broken{k}.jpg").write_bytes(CORRUPT)
        rows.append({"file_name": f"broken{k}.jpg", "text": "a picture that cannot be read"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_hf_dataset(path: Path, n: int = 24, captions: bool = False) -> Path:
    """A `datasets` DatasetDict (train, test) saved with save_to_disk: an Image column and a
    ClassLabel column `label` (or a caption column `caption`)."""
    import datasets

    features = {"image": datasets.Image()}
    if captions:
        features["caption"] = datasets.Value("string")
    else:
        features["label"] = datasets.ClassLabel(names=list(COLOURS))
    splits = {}
    for split, count in (("train", n), ("test", max(3, n // 4))):
        rows = {"image": [], "caption" if captions else "label": []}
        for k in range(count):
            c = k % len(COLOURS)
            rows["image"].append(picture(list(COLOURS)[c], k))
            rows["caption" if captions else "label"].append(captions_of(list(COLOURS)[c], k)[0] if captions else c)
        splits[split] = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def write_mnist_root(root: Path, n_train: int = 30, n_test: int = 10) -> Path:
    """root/MNIST/raw with the four idx files torchvision's MNIST reads: digit k drawn as a
    bar whose height is its label."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = np.zeros((n, 28, 28), np.uint8)
        for i, y in enumerate(labels):
            images[i, 28 - 2 * (int(y) + 1):, 8:20] = 255
        header = np.array([2051, n, 28, 28], ">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, n], ">i4").tobytes() + labels.tobytes())
    return root
