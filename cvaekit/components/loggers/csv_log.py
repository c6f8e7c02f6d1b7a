"""Plain CSV files in the run folder, for a spreadsheet or pandas."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

from cvaekit.store.tracking import Logger


class CSVLog(Logger):
    """CSV files in the run folder: params.csv (key, value), figures.csv (epoch, name, value), images.csv.

    folder: the folder inside the run folder the files go to.
    log_checkpoint: also copy the last checkpoint there when training ends."""

    def __init__(self, folder: str = "csv", log_checkpoint: bool = False):
        self.folder_name, self.log_checkpoint = folder, log_checkpoint
        self.folder: Path | None = None

    def start(self, run: Path, params: dict[str, Any]) -> None:
        self.folder = Path(run) / self.folder_name
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write("params.csv", ["key", "value"], [[k, v] for k, v in params.items()], mode="w")
        self._write("figures.csv", ["epoch", "name", "value"], [], mode="w")
        self._write("images.csv", ["epoch", "name", "path"], [], mode="w")

    def _write(self, name: str, header: list[str], rows: list[list[Any]], mode: str = "a") -> None:
        with (self.folder / name).open(mode, newline="") as f:
            out = csv.writer(f)
            if mode == "w":
                out.writerow(header)
            out.writerows(rows)

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        self._write("figures.csv", [], [[epoch, k, v] for k, v in figures.items()])

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        self.epoch(epoch, figures)
        self._write("images.csv", [], [[epoch, k, str(p)] for k, p in images.items()])

    def close(self, status: str, checkpoint: Path | None) -> None:
        if self.log_checkpoint and checkpoint is not None and checkpoint.is_file():
            shutil.copyfile(checkpoint, self.folder / checkpoint.name)
