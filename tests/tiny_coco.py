"""A tiny MS-COCO 2017 tree written by the tests: train2017/, val2017/ and
annotations/captions_{train,val}2017.json in the real format, JPEG images of a few sizes,
optionally some corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
THINGS = ("a cat", "a dog", "a horse", "a kite")


def caption_of(i: int, j: int) -> str:
    """Caption j of image i: five per image, each worded differently."""
    colour = list(COLOURS)[i % len(COLOURS)]
    thing = THINGS[(i // len(COLOURS)) % len(THINGS)]
    return ["{t} on a {c} background", "a {c} picture of {t}", "{t}, all {c}",
            "photo: {t} and {c}", "there is {t} in front of {c}"][j].format(t=thing, c=colour)


def write_split(root: Path, split: str, n: int, corrupt: int = 0, first_id: int = 1,
                size: tuple[int, int] = (48, 40)) -> list[int]:
    """`n` images (the last `corrupt` of them unreadable) and their captions JSON; returns ids."""
    images_dir = root / f"{split}2017"
    images_dir.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    rng = np.random.default_rng(first_id)
    for k in range(n):
        image_id = first_id + k
        name = f"{image_id:012d}.jpg"
        w, h = size if k % 2 == 0 else size[::-1]  # landscape and portrait, so crops differ
        if k >= n - corrupt:
            (images_dir / name).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" + rng.bytes(64))
        else:
            colour = np.array(COLOURS[list(COLOURS)[k % len(COLOURS)]], dtype=np.uint8)
            Image.fromarray(np.broadcast_to(colour, (h, w, 3)).copy()).save(images_dir / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for j in range(5):
            annotations.append({"id": image_id * 10 + j, "image_id": image_id, "caption": caption_of(k, j) + " "})
    captions = {"info": {"description": "tiny COCO for tests"}, "licenses": [],
                "images": images, "annotations": annotations}
    (root / "annotations" / f"captions_{split}2017.json").write_text(json.dumps(captions))
    return [im["id"] for im in images]


def write_tiny_coco(root: str | Path, n_train: int = 12, n_val: int = 4, corrupt: int = 1) -> Path:
    """The whole tree; `corrupt` unreadable images in train2017."""
    root = Path(root)
    write_split(root, "train", n_train, corrupt, first_id=1)
    write_split(root, "val", n_val, 0, first_id=10_000)
    return root
