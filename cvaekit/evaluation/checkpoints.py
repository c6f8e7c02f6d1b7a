"""`cvaekit evaluate`: every metric at every checkpoint of a run, as one table (the study's
Table 3), and the figures that show a run's progress: samples for fixed prompts and
reconstructions of fixed test images at every checkpoint (its Figures 3 and 6).

Writes into the run folder:

    evaluation.csv / evaluation.json   one row per checkpoint, one column per metric
    samples_by_epoch.png               rows = checkpoints, columns = prompts (same noise)
    reconstructions_by_epoch.png       rows = real, then each checkpoint; columns = test images
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvaekit.assembly import build_dataset, build_metrics, load_run
from cvaekit.errors import CvaekitError, choices_text
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.evaluation.progress import ProgressFigures
from cvaekit.evaluation.tables import write_table
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import Recipe
from cvaekit.runtime.device import resolve_device
from cvaekit.store.runs import RunDir


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
        return kept or [run.resolve_checkpoint("last")]
    return [run.resolve_checkpoint(item.strip()) for item in which.split(",") if item.strip()]


def metric_specs(recipe: Recipe, names: list[str] | None, registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) of the metrics to run: the recipe's own (with their parameters), or
    the named ones (taking the recipe's parameters for those it also names)."""
    own = {m.name: m.params for m in recipe.eval.metrics}
    if not names and not own:
        valid = registry.names("metric")
        raise CvaekitError(f"This run's recipe names no metrics (eval.metrics), so say which: "
                           f"--metrics {','.join(valid[:2])}. Valid metrics: {choices_text(valid)}.")
    return list(own.items()) if not names else [(n, own.get(n, {})) for n in names]


# ---------------------------------------------------------------------------- evaluate

def evaluate(run: str | os.PathLike, checkpoints: str = "all", metrics: list[str] | None = None,
             registry: Registry | None = None, device: str = "auto", limit: int | None = None,
             figures: bool = True) -> Evaluation:
    """Measure `metrics` (default: the recipe's eval.metrics) at the chosen checkpoints of
    a run, write evaluation.csv/.json (and the progress figures) into it, and return them."""
    registry = registry or get_registry()
    run_dir = RunDir.open(run)
    paths = checkpoint_paths(run_dir, checkpoints)
    first = load_run(run_dir.path, str(paths[0]), registry, resolve_device(device))
    recipe = first.recipe
    built = build_metrics(metric_specs(recipe, metrics, registry), registry)
    data = build_dataset(recipe, registry)
    test = data.test.head(limit or recipe.eval.limit)
    if len(test) == 0:
        raise CvaekitError(f"The test split of '{recipe.data.name}' is empty: nothing to evaluate.")
    progress = ProgressFigures(data, recipe) if figures else None

    by_epoch: dict[int, dict[str, Any]] = {}
    for path in paths:  # each checkpoint with the prior fitted to it, if `fit-prior` fitted one
        trained = first if path == paths[0] else load_run(run_dir.path, str(path), registry, first.model.device)
        results = run_metrics(built, EvalContext(trained.model, data, test, seed=recipe.seed))
        if progress is not None:
            progress.add(trained.epoch, trained.model)
        by_epoch[trained.epoch] = {"epoch": trained.epoch, "checkpoint": _relative(path, run_dir.path), **results}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in ("epoch", "checkpoint")))
    files = write_table(rows, ["epoch"], columns, run_dir.evaluation_stem,
                        extra={"run": str(run_dir.path), "recipe": recipe.name, "test_images": len(test)})
    if progress is not None:
        files += progress.write(run_dir)
    return Evaluation(run_dir.path, columns, rows, files)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
