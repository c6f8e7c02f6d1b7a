"""The run folder: runs/<name>-<timestamp>/ and everything a run leaves in it.

    recipe.yaml            the resolved recipe (every default filled in)
    checkpoints/last.pt    after every epoch (and every `save_every_steps` steps); epoch-NNNN.pt
                           every `checkpoint_every` epochs
    checkpoints/epoch-end.pt, rewind.pt   with train.rewinds, while training: the last epoch end and
                           the one before it, where a diverged run goes back to (removed at the end)
    metrics.jsonl          one line per epoch (kind: train) and per checkpoint (kind: eval)
    samples/epoch-NNNN.png         a labelled sample grid per checkpoint
    reconstructions/epoch-NNNN.png real images above their reconstructions
    loss_curve.png
    evaluation.csv / .json         `cvaekit evaluate`'s table (each evaluation merged in)
    samples_by_epoch.png, reconstructions_by_epoch.png
    checkpoints/epoch-NNNN.prior.pt    a prior `cvaekit fit-prior` fitted to that checkpoint
    torchrun-id.txt        under torchrun: the job's id, by which a restarted group finds the run

A run started with `--run-name NAME` is `<runs_dir>/NAME`, without the timestamp.

`RunDir` is the one place these paths are spelled.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvaekit.errors import CvaekitError
from cvaekit.recipe import Recipe, dump_recipe


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, recipe: Recipe, folder: Path | None = None) -> RunDir:
        """A new run folder `<runs_dir>/<name>-<timestamp>` (or `folder`: a named run's, or one a
        crash left before its first checkpoint) holding the resolved recipe."""
        path = new_folder(Path(recipe.runs_dir), recipe.name) if folder is None else folder
        path.mkdir(parents=True, exist_ok=True)
        dump_recipe(recipe, path / "recipe.yaml")
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        path = Path(path)
        if not (path / "recipe.yaml").is_file():
            raise CvaekitError(f"'{path}' is not a cvaekit run folder (it has no recipe.yaml).")
        return cls(path)

    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def epoch_end(self) -> Path:
        return self.path / "checkpoints" / "epoch-end.pt"

    @property
    def rewind_point(self) -> Path:
        return self.path / "checkpoints" / "rewind.pt"

    def checkpoint(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch-{epoch:04d}.pt"

    def samples(self, epoch: int) -> Path:
        return self.path / "samples" / f"epoch-{epoch:04d}.png"

    def reconstructions(self, epoch: int) -> Path:
        return self.path / "reconstructions" / f"epoch-{epoch:04d}.png"

    def fitted_prior(self, epoch: int) -> Path:
        """Where `cvaekit fit-prior` keeps the prior it fitted to the checkpoint of `epoch`."""
        return self.path / "checkpoints" / f"epoch-{epoch:04d}.prior.pt"

    def fitted_samples(self, epoch: int, prior: str) -> Path:
        """The sample grid of the checkpoint of `epoch` drawn from the fitted `prior`."""
        return self.path / "samples" / f"epoch-{epoch:04d}-{prior}.png"

    @property
    def samples_by_epoch(self) -> Path:
        return self.path / "samples_by_epoch.png"

    @property
    def reconstructions_by_epoch(self) -> Path:
        return self.path / "reconstructions_by_epoch.png"

    @property
    def evaluation_stem(self) -> Path:
        """evaluation.csv and evaluation.json, without the suffix."""
        return self.path / "evaluation"

    @property
    def loss_curve(self) -> Path:
        return self.path / "loss_curve.png"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def launch_file(self) -> Path:
        """The id of the torchrun job that made the run: its restarted group finds the run by it."""
        return self.path / "torchrun-id.txt"

    def launched_by(self, run_id: str) -> bool:
        return self.launch_file.is_file() and self.launch_file.read_text().strip() == run_id

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every kept checkpoint, oldest first."""
        found = []
        for p in (self.path / "checkpoints").glob("epoch-*.pt"):
            m = re.fullmatch(r"epoch-(\d+)\.pt", p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def resolve_checkpoint(self, checkpoint: str | None) -> Path:
        """'last' (default), an epoch number, or a path. 'last' is the newest kept epoch in a
        run folder made from an exported model (it keeps no training state, so no last.pt)."""
        if checkpoint in (None, "last"):
            path = self.last if self.last.is_file() or not self.checkpoints() else self.checkpoints()[-1][1]
        elif str(checkpoint).isdigit():
            path = self.checkpoint(int(checkpoint))
        else:
            path = Path(checkpoint)
        if not path.is_file():
            kept = ", ".join(str(e) for e, _ in self.checkpoints()) or "none"
            raise CvaekitError(f"Run '{self.path}' has no checkpoint '{checkpoint or 'last'}'. "
                               f"Kept epochs: {kept}; or 'last'.")
        return path

    def log(self, record: dict[str, Any]) -> None:
        with self.metrics_file.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]

    def metrics_at(self, epoch: int) -> dict[str, float]:
        """The metrics training measured at the checkpoint of `epoch` ({} when none were)."""
        records = [r for r in self.records() if r.get("kind") == "eval" and r.get("epoch") == epoch]
        if not records:
            return {}
        return {k: v for k, v in records[-1].items() if k not in ("kind", "epoch", "step", "checkpoint")}

    def truncate_records(self, after_epoch: int) -> None:
        """Drop records past `after_epoch` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.records() if r.get("epoch", 0) <= after_epoch]
        self.metrics_file.write_text("".join(json.dumps(r) + "\n" for r in kept))


def new_folder(parent: Path, name: str) -> Path:
    """A new folder `parent/<name>-<timestamp>` (with -2, -3, ... for two in the same second).
    Made with mkdir itself, never a look first: of two processes starting in the same second
    one gets the name and the other the next, never both the same folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = parent / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")
