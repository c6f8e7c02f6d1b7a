"""The run folder: runs/<name>-<timestamp>/ and everything a run leaves in it.

    recipe.yaml            the resolved recipe (every default filled in)
    checkpoints/last.pt    after every epoch; epoch-NNNN.pt every `checkpoint_every` epochs
    metrics.jsonl          one line per epoch (kind: train) and per checkpoint (kind: eval)
    samples/epoch-NNNN.png         a labelled sample grid per checkpoint
    reconstructions/epoch-NNNN.png real images above their reconstructions
    loss_curve.png
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint
from .data import DataInfo
from .errors import CvaekitError
from .model import CVAE, build_model, build_prior
from .recipe import Recipe, dump_recipe, load_recipe
from .registry import Registry


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, recipe: Recipe) -> RunDir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(recipe.runs_dir) / f"{recipe.name}-{stamp}"
        n = 1
        while path.exists():  # two runs started in the same second
            n += 1
            path = Path(recipe.runs_dir) / f"{recipe.name}-{stamp}-{n}"
        path.mkdir(parents=True)
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

    def checkpoint(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch-{epoch:04d}.pt"

    def samples(self, epoch: int) -> Path:
        return self.path / "samples" / f"epoch-{epoch:04d}.png"

    def reconstructions(self, epoch: int) -> Path:
        return self.path / "reconstructions" / f"epoch-{epoch:04d}.png"

    @property
    def loss_curve(self) -> Path:
        return self.path / "loss_curve.png"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every kept checkpoint, oldest first."""
        found = []
        for p in (self.path / "checkpoints").glob("epoch-*.pt"):
            m = re.fullmatch(r"epoch-(\d+)\.pt", p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def log(self, record: dict[str, Any]) -> None:
        with self.metrics_file.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]

    def truncate_records(self, after_epoch: int) -> None:
        """Drop records past `after_epoch` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.records() if r.get("epoch", 0) <= after_epoch]
        self.metrics_file.write_text("".join(json.dumps(r) + "\n" for r in kept))


@dataclass
class TrainedRun:
    """A run folder's recipe and model, loaded from one of its checkpoints."""

    run: RunDir
    recipe: Recipe
    model: CVAE
    epoch: int
    checkpoint: Path
    fitted_prior: Path | None = None  # the prior fitted afterwards (`cvaekit fit-prior`), if one is used


def resolve_checkpoint(run: RunDir, checkpoint: str | None) -> Path:
    """'last' (default), an epoch number, or a path."""
    if checkpoint in (None, "last"):
        path = run.last
    elif str(checkpoint).isdigit():
        path = run.checkpoint(int(checkpoint))
    else:
        path = Path(checkpoint)
    if not path.is_file():
        kept = ", ".join(str(e) for e, _ in run.checkpoints()) or "none"
        raise CvaekitError(f"Run '{run.path}' has no checkpoint '{checkpoint or 'last'}'. "
                           f"Kept epochs: {kept}; or 'last'.")
    return path


def fitted_prior_path(run: RunDir, epoch: int) -> Path:
    """Where `cvaekit fit-prior` keeps the prior it fitted to the checkpoint of `epoch`."""
    return run.path / "checkpoints" / f"epoch-{epoch:04d}.prior.pt"


def load_run(path: str | os.PathLike, checkpoint: str | None = None,
             registry: Registry | None = None, device: str | torch.device = "cpu",
             fitted_prior: bool = True) -> TrainedRun:
    """Rebuild a run's model from its recipe and load a checkpoint (no data set needed).

    A prior that `cvaekit fit-prior` fitted to this checkpoint replaces the recipe's own
    unless `fitted_prior` is False."""
    from .plugins import get_registry

    registry = registry or get_registry()
    run = RunDir.open(path)
    recipe = load_recipe(run.recipe_file, registry=registry)
    ckpt_path = resolve_checkpoint(run, checkpoint)
    state = load_checkpoint(ckpt_path)
    model = build_model(recipe.model, DataInfo.from_dict(state["data_info"]), registry)
    model.load_state_dict(state["model"])
    fitted = fitted_prior_path(run, state["epoch"])
    if not (fitted_prior and fitted.is_file()):
        return TrainedRun(run, recipe, model.to(device).eval(), state["epoch"], ckpt_path)
    saved = load_checkpoint(fitted)
    model.prior = build_prior(saved["prior"]["name"], saved["prior"]["params"], model.conditioner.dim,
                              model.latent_dim, registry)
    model.prior.load_state_dict(saved["state"])
    return TrainedRun(run, recipe, model.to(device).eval(), state["epoch"], ckpt_path, fitted)
