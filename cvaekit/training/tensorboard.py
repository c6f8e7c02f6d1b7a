"""TensorBoard logging for a run whose recipe says `log.tensorboard: true`.

Writes to runs/<run>/tensorboard (view with `tensorboard --logdir runs`): the train loss
terms per epoch (train/loss, train/recon, train/kl, train/images_per_s), every metric per
checkpoint (eval/<name>), and the checkpoint's sample and reconstruction grids as images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvaekit.runtime.optional import require

TRAIN_SCALARS = ("loss", "recon", "kl", "images_per_s")


class TensorBoardLog:
    def __init__(self, folder: str | os.PathLike):
        SummaryWriter = require("torch.utils.tensorboard", "tensorboard",
                                "'log.tensorboard: true'").SummaryWriter
        self.folder = Path(folder)
        self.writer = SummaryWriter(str(self.folder))

    def epoch(self, record: dict[str, Any]) -> None:
        """A train record (one per epoch), flushed so an interrupted run keeps it."""
        for key in TRAIN_SCALARS:
            if key in record:
                self.writer.add_scalar(f"train/{key}", record[key], record["epoch"])
        self.writer.flush()

    def checkpoint(self, epoch: int, results: dict[str, float], images: list[Path]) -> None:
        """A checkpoint's metrics, and its figures (PNG files) as images named by folder."""
        for key, value in results.items():
            self.writer.add_scalar(f"eval/{key}", value, epoch)
        for path in images:
            if Path(path).is_file():
                rgb = np.asarray(Image.open(path).convert("RGB"))
                self.writer.add_image(Path(path).parent.name, rgb, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
