"""`cvaekit sweep`: one run per point of a grid of recipe settings, then one table of the
metrics by setting (the study's Table 4) and one figure of samples for the same prompts,
side by side across settings (its Figure 4).

    runs/<name>-sweep-<timestamp>/
        <name>-<setting>-<timestamp>/   each point's own run folder
        sweep.csv, sweep.json           one row per setting: its values, the run, then the
                                        metrics of its last checkpoint and its last train loss
        samples_by_setting.png          rows = settings, columns = prompts
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from cvaekit.assembly import build_dataset, load_run, sample_prompts
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.evaluation.comparison import comparison_grid
from cvaekit.evaluation.tables import write_table
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import load_recipe
from cvaekit.store.runs import RunDir, new_folder
from cvaekit.training.workers import as_file, log_tail, worker_env


@dataclass
class Sweep:
    """What `sweep` trained and wrote."""

    folder: Path
    keys: list[str]  # the grid's keys, then "run" and "epoch" (of its last checkpoint)
    columns: list[str]  # metric names
    rows: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """['model.latent_dim=128,256'] (or '=[128, 256]') -> {'model.latent_dim': [128, 256]};
    each value is parsed as YAML, like a --set value."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise RecipeError(f"Grid '{item}' must look like key.path=value1,value2 "
                              f"(e.g. model.latent_dim=128,256,512).")
        raw = raw.strip()
        values = yaml.safe_load(raw) if raw.startswith("[") else [yaml.safe_load(v) for v in raw.split(",")]
        if not isinstance(values, list) or not values:
            raise RecipeError(f"Grid '{item}' names no values.")
        if key.strip() in grid:
            raise RecipeError(f"Grid key '{key.strip()}' is given twice; list all its values once.")
        grid[key.strip()] = values
    if not grid:
        raise RecipeError("A sweep needs at least one --grid key=value1,value2.")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order given."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def side_by_side(recipe: str | os.PathLike | dict[str, Any], point_sets: list[list[str]], folder: Path,
                 jobs: int, progress: bool) -> list[Path]:
    """Each point's `cvaekit run` in a process of its own, `jobs` at once, the cores divided
    among them (OMP_NUM_THREADS, unless the user set it); the run folders in point order. A
    point that fails is named with the end of its output once the others have finished."""
    recipe = as_file(recipe, folder / "recipe.yaml")
    env = worker_env(jobs)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    waiting, running, done, failed = list(enumerate(point_sets)), {}, {}, []
    columns = [TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points, {task.fields[jobs]} at once"),
               TimeElapsedColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("sweep", total=len(point_sets), jobs=jobs)
        while waiting or running:
            while waiting and len(running) < jobs:
                i, sets = waiting.pop(0)
                log = (logs / f"point-{i + 1}.log").open("w")
                cmd = [sys.executable, "-m", "cvaekit", "run", str(recipe), "-q"]
                for item in sets:
                    cmd += ["--set", item]
                running[i] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
            time.sleep(0.2)
            for i, (proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[i]
                bar.advance(task)
                name = json.loads(point_sets[i][-1].partition("=")[2])
                found = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(
                    rf"{re.escape(name)}-\d{{8}}-\d{{6}}(-\d+)?", p.name)]
                if proc.returncode == 0 and len(found) == 1:
                    done[i] = found[0]
                else:
                    failed.append(f"point {i + 1} ({' '.join(point_sets[i][:-2])}): "
                                  + log_tail(logs / f"point-{i + 1}.log", 5))
    if failed:
        raise CvaekitError(f"{len(failed)} of {len(point_sets)} sweep points failed (their output is in "
                           f"{logs}): " + "; ".join(failed))
    return [done[i] for i in range(len(point_sets))]


def _label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())


def _slug(point: dict[str, Any]) -> str:
    text = "-".join(f"{k.split('.')[-1]}{v}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text)[:80]


def _last(records: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in records if r.get("kind") == kind]
    return found[-1] if found else {}


def sweep(recipe: str | os.PathLike | dict[str, Any], grid: list[str], overrides: list[str] = (),
          registry: Registry | None = None, progress: bool = True, jobs: int = 1) -> Sweep:
    """Train one run per grid point (the recipe with `overrides`, then the point's values),
    each into the sweep folder, `jobs` at a time, then write the table and the samples figure."""
    if not isinstance(jobs, int) or jobs < 1:
        raise RecipeError(f"sweep: 'jobs' must be a whole number of at least 1, got {jobs!r}.")
    from cvaekit.core.sampling import sample_rows
    from cvaekit.plugins.loading import get_registry
    from cvaekit.training.run import train

    registry = registry or get_registry()
    points = grid_points(parse_grid(list(grid)))
    base = load_recipe(recipe, list(overrides), registry)
    for point in points:  # every point's recipe is valid before the first one trains
        load_recipe(recipe, [*overrides, *(f"{k}={json.dumps(v)}" for k, v in point.items())], registry)
    folder = new_folder(Path(base.runs_dir), f"{base.name}-sweep")

    data = build_dataset(base, registry)
    prompts = sample_prompts(base, data)
    rows, figure_rows = [], []
    point_sets = [[*overrides, *(f"{k}={json.dumps(v)}" for k, v in point.items()),
                   f"runs_dir={json.dumps(str(folder))}", f"name={json.dumps(f'{base.name}-{_slug(point)}')}"]
                  for point in points]
    if jobs > 1:
        runs = side_by_side(recipe, point_sets, folder, jobs, progress)
    else:
        runs = [train(recipe, overrides=sets, registry=registry, progress=progress) for sets in point_sets]
    for point, run_path in zip(points, runs):
        records = RunDir(run_path).records()
        evaluated = {k: v for k, v in _last(records, "eval").items()
                     if k not in ("kind", "epoch", "step", "checkpoint")}
        trained = _last(records, "train")
        rows.append({**point, "run": run_path.name, "epoch": trained.get("epoch"),
                     **evaluated, "train_loss": trained.get("loss")})
        model = load_run(run_path, registry=registry).model
        figure_rows.append((_label(point), *sample_rows(model, prompts, 1, seed=base.seed)))

    keys = [*points[0], "run", "epoch"]
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in keys))
    files = write_table(rows, keys, columns, folder / "sweep",
                        extra={"recipe": base.name, "grid": parse_grid(list(grid)), "overrides": list(overrides)})
    files.append(comparison_grid([(label, torch.cat(images)) for label, *images in figure_rows], prompts,
                                 folder / "samples_by_setting.png", title=f"{base.name}: samples by setting"))
    return Sweep(folder, keys, columns, rows, files)
