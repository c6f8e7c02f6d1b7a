"""`cvaekit evaluate`: every metric at every checkpoint of a run, as one table (the study's
Table 3), and the figures that show a run's progress: samples for fixed prompts and
reconstructions of fixed test images at every checkpoint (its Figures 3 and 6).

Writes into the run folder:

    evaluation.csv / evaluation.json   one row per checkpoint, one column per metric
    samples_by_epoch.png               rows = checkpoints, columns = prompts (same noise)
    reconstructions_by_epoch.png       rows = real, then each checkpoint; columns = test images
"""

from __future__ import annotations

import copy
import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from .checkpoint import load_checkpoint
from .comparison import comparison_grid
from .data import DataSource
from .errors import CvaekitError, choices_text
from .evaluation import EvalContext, run_metrics
from .model import CVAE
from .recipe import Recipe
from .registry import Registry
from .runs import RunDir, load_run, resolve_checkpoint

RECONSTRUCTED = 8  # test images in the reconstructions figure


@dataclass
class Evaluation:
    """What `evaluate` measured and wrote."""

    run: Path
    columns: list[str]  # metric names, in order
    rows: list[dict[str, Any]]  # {"epoch", "checkpoint", **metrics}, oldest first
    files: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------------- choosing

def checkpoint_paths(run: RunDir, which: str = "all") -> list[Path]:
    """'all' (every kept checkpoint; last.pt when none is kept), 'last', or a comma list
    of epochs (or paths)."""
    which = (which or "all").strip()
    if which == "all":
        kept = [p for _, p in run.checkpoints()]
        return kept or [resolve_checkpoint(run, "last")]
    return [resolve_checkpoint(run, item.strip()) for item in which.split(",") if item.strip()]


def metric_specs(recipe: Recipe, names: list[str] | None, registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) of the metrics to run: the recipe's own (with their parameters), or
    the named ones (taking the recipe's parameters for those it also names)."""
    own = {m.name: m.params for m in recipe.eval.metrics}
    if not names and not own:
        valid = registry.names("metric")
        raise CvaekitError(f"This run's recipe names no metrics (eval.metrics), so say which: "
                           f"--metrics {','.join(valid[:2])}. Valid metrics: {choices_text(valid)}.")
    return list(own.items()) if not names else [(n, own.get(n, {})) for n in names]


# ---------------------------------------------------------------------------- figures

class ProgressFigures:
    """Collects, per checkpoint, one sample per prompt (same noise every time) and the
    reconstructions of the same test images, then draws both figures."""

    def __init__(self, data: DataSource, recipe: Recipe):
        self.recipe = recipe
        self.prompts = list(recipe.eval.conditions or data.default_prompts())
        n = min(RECONSTRUCTED, len(data.test))
        self.real, self.real_raw = data.test.batch(torch.arange(n), caption="first")
        self.samples: dict[int, torch.Tensor] = {}  # epoch -> one image per prompt
        self.recons: dict[int, torch.Tensor] = {}  # epoch -> reconstructions of `real`

    @torch.no_grad()
    def add(self, epoch: int, model: CVAE) -> None:
        from .generate import sample_rows

        rows = sample_rows(model, self.prompts, 1, seed=self.recipe.seed)
        self.samples[epoch] = torch.cat(rows)
        was_training = model.training
        model.eval()
        self.recons[epoch] = model.reconstruct(self.real, self.real_raw).cpu()
        model.train(was_training)

    def write(self, run: RunDir) -> list[Path]:
        if not self.samples:
            return []
        name, epochs = self.recipe.name, sorted(self.samples)
        samples = [(f"epoch {e}", self.samples[e]) for e in epochs]
        recons = [("real", self.real)] + [(f"epoch {e}", self.recons[e]) for e in epochs]
        return [comparison_grid(samples, self.prompts, run.path / "samples_by_epoch.png",
                                title=f"{name}: samples by checkpoint"),
                comparison_grid(recons, None,
                                run.path / "reconstructions_by_epoch.png",
                                title=f"{name}: reconstructions by checkpoint")]


def write_progress_figures(model: CVAE, data: DataSource, recipe: Recipe, run: RunDir,
                           figures: ProgressFigures | None = None) -> list[Path]:
    """Both figures over every kept checkpoint. Checkpoints `figures` already holds (the
    training loop adds each as it saves it) are not read again; any other is loaded into
    `model` in turn, and the model's own weights are put back after."""
    figures = figures or ProgressFigures(data, recipe)
    missing = [(e, p) for e, p in run.checkpoints() if e not in figures.samples]
    if not missing:
        return figures.write(run)
    own = copy.deepcopy(model.state_dict())  # tensors, and any extra state (a vocabulary)
    try:
        for epoch, path in missing:
            model.load_state_dict(load_checkpoint(path)["model"])
            figures.add(epoch, model)
    finally:
        model.load_state_dict(own)
    return figures.write(run)


# ---------------------------------------------------------------------------- tables

def metrics_table(rows: list[dict[str, Any]], keys: list[str], columns: list[str], title: str) -> Table:
    """A rich table: the `keys` columns (epoch, or a sweep's settings) then the metrics."""
    table = Table(title=title)
    for k in keys:
        table.add_column(k, justify="right" if k == "epoch" else "left")
    for c in columns:
        table.add_column(c, justify="right")
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in keys),
                      *(_number(row.get(c)) for c in columns))
    return table


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.2f}"


def write_table(rows: list[dict[str, Any]], keys: list[str], columns: list[str], stem: Path,
                extra: dict[str, Any] | None = None) -> list[Path]:
    """`stem`.csv (one row per row) and `stem`.json (the rows, the columns and `extra`)."""
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys + columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps({**(extra or {}), "keys": keys, "metrics": columns, "rows": rows}, indent=2))
    return [csv_path, json_path]


# ---------------------------------------------------------------------------- evaluate

def evaluate(run: str | os.PathLike, checkpoints: str = "all", metrics: list[str] | None = None,
             registry: Registry | None = None, device: str = "auto", limit: int | None = None,
             figures: bool = True) -> Evaluation:
    """Measure `metrics` (default: the recipe's eval.metrics) at the chosen checkpoints of
    a run, write evaluation.csv/.json (and the progress figures) into it, and return them."""
    from .plugins import get_registry
    from .training import resolve_device

    registry = registry or get_registry()
    run_dir = RunDir.open(run)
    paths = checkpoint_paths(run_dir, checkpoints)
    trained = load_run(run_dir.path, str(paths[0]), registry, resolve_device(device))
    recipe, model = trained.recipe, trained.model
    built = [registry.build("metric", name, params) for name, params in metric_specs(recipe, metrics, registry)]
    data = registry.build("dataset", recipe.data.name, recipe.data.params)
    test = data.test.head(limit or recipe.eval.limit)
    if len(test) == 0:
        raise CvaekitError(f"The test split of '{recipe.data.name}' is empty: nothing to evaluate.")
    progress = ProgressFigures(data, recipe) if figures else None

    by_epoch: dict[int, dict[str, Any]] = {}
    for path in paths:
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        model.eval()
        results = run_metrics(built, EvalContext(model, data, test, seed=recipe.seed))
        if progress is not None:
            progress.add(state["epoch"], model)
        by_epoch[state["epoch"]] = {"epoch": state["epoch"], "checkpoint": _relative(path, run_dir.path), **results}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in ("epoch", "checkpoint")))
    files = write_table(rows, ["epoch"], columns, run_dir.path / "evaluation",
                        extra={"run": str(run_dir.path), "recipe": recipe.name, "test_images": len(test)})
    if progress is not None:
        files += progress.write(run_dir)
    return Evaluation(run_dir.path, columns, rows, files)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
