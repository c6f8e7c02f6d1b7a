"""TensorBoard event files in the run folder (view with `tensorboard --logdir runs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvaekit.runtime.optional import require
from cvaekit.store.tracking import Logger


class TensorBoardLog(Logger):
    """TensorBoard event files in the run folder: every figure per epoch, the grids as images.

    folder: the folder inside the run folder the event files go to."""

    def __init__(self, folder: str = "tensorboard"):
        self.folder = folder
        self.writer = None

    def start(self, run: Path, params: dict[str, Any]) -> None:
        writer = require("torch.utils.tensorboard", "tensorboard", "The logger 'tensorboard'").SummaryWriter
        self.writer = writer(str(Path(run) / self.folder))
        self.writer.add_text("recipe", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        """Flushed each epoch, so an interrupted run keeps what it logged."""
        for key, value in figures.items():
            self.writer.add_scalar(key, value, epoch)
        self.writer.flush()

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        self.epoch(epoch, figures)
        for name, path in images.items():
            if Path(path).is_file():
                rgb = np.asarray(Image.open(path).convert("RGB"))
                self.writer.add_image(name, rgb, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self, status: str, checkpoint: Path | None) -> None:
        if self.writer is not None:
            self.writer.close()
