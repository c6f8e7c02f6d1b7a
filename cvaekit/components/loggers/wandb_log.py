"""Weights & Biases: offline by default, so a run needs no account or network while it trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from cvaekit.runtime.optional import require
from cvaekit.store.tracking import Logger


class WandbLog(Logger):
    """A W&B run in the run folder (wandb/offline-run-*; `wandb sync` uploads it later): the recipe as config, every figure per epoch, the grids as images.

    project: the W&B project the run belongs to.
    mode: offline (written in the run folder only), online (streamed to W&B, needs `wandb login`) or disabled.
    entity: the W&B team or user (null: the login's default).
    log_checkpoint: also keep the last checkpoint as a model artifact when training ends."""

    def __init__(self, project: str = "cvaekit", mode: Literal["offline", "online", "disabled"] = "offline",
                 entity: str | None = None, log_checkpoint: bool = False):
        self.project, self.mode, self.entity, self.log_checkpoint = project, mode, entity, log_checkpoint
        self.run = None

    def start(self, run: Path, params: dict[str, Any]) -> None:
        wandb = require("wandb", "wandb", "The logger 'wandb'")
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)  # the loop's own output stays as it is
        self.run = wandb.init(project=self.project, entity=self.entity, name=Path(run).name, dir=str(run),
                              mode=self.mode, config=params, reinit="create_new", settings=settings)

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        self.run.log(dict(figures), step=epoch)

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        wandb = require("wandb", "wandb", "The logger 'wandb'")
        shown = {name: wandb.Image(str(path)) for name, path in images.items() if Path(path).is_file()}
        self.run.log({**figures, **shown}, step=epoch)

    def close(self, status: str, checkpoint: Path | None) -> None:
        if self.run is None:
            return
        if self.log_checkpoint and checkpoint is not None and checkpoint.is_file():
            wandb = require("wandb", "wandb", "The logger 'wandb'")
            artifact = wandb.Artifact(f"{self.run.name}-model".replace("/", "-"), type="model")
            artifact.add_file(str(checkpoint))
            self.run.log_artifact(artifact)
        self.run.finish(exit_code=0 if status == "finished" else 1)
