"""`cvaekit tune`: Optuna searches a recipe's settings, each trial a normal run folder.

    <runs_dir>/<name>-tune-<study>/
        study.db                              the study, unless --storage names another database
        trials/<name>-trial<N>-<timestamp>/   each trial's run folder (the trial's user attr `run`)
        best.yaml                             the best trial's recipe, every default filled in
        plots/history.png, importances.png, parallel_coordinates.png
        logs/worker-<i>.log                   with --jobs: each worker's output

The same command on several machines with one `--storage postgresql://...` shares the study.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins.registry import Registry
from cvaekit.training.tune_report import best_recipe, plots, trial_rows
from cvaekit.training.tune_trials import TuneInterrupted, Tuner, open_study, prepared
from cvaekit.training.workers import as_file, log_tail, worker_env

__all__ = ["TuneInterrupted", "Tuned", "tune"]


@dataclass
class Tuned:
    """What `tune` found and wrote."""

    folder: Path
    study: str
    storage: str
    keys: list[str]
    columns: list[str]
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # plots not drawn, and why


def tune(recipe: str | os.PathLike | dict[str, Any], space: str | os.PathLike | dict[str, Any], trials: int, *,
         overrides: list[str] = (), storage: str | None = None, study: str | None = None, jobs: int = 1,
         heartbeat: int = 60, registry: Registry | None = None, progress: bool = True, report: bool = True) -> Tuned | None:
    """Run trials of `recipe` with the `space`'s values until the study has `trials` finished,
    `jobs` workers here at once; then (with `report`) the table, best.yaml and the plots."""
    from cvaekit.plugins.loading import get_registry

    if not isinstance(jobs, int) or jobs < 1:
        raise RecipeError(f"tune: '--jobs' must be a whole number of at least 1, got {jobs!r}.")
    jobs = min(jobs, trials)  # a worker more than the trials would find nothing to do
    registry = registry or get_registry()
    spec, base, name, folder = prepared(recipe, space, trials, list(overrides), registry, study)
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    opened = open_study(url, name, spec, heartbeat, base.train.epochs)
    tuner = Tuner(recipe, spec, trials, list(overrides), folder, registry, base.name)
    columns = [TextColumn(f"tune {name}"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("tune", total=trials)
        advance = lambda done: bar.update(task, completed=min(done, trials))
        try:
            if jobs > 1:
                _side_by_side(recipe, space, trials, list(overrides), url, name, jobs, heartbeat,
                              folder, opened, advance)
            else:
                tuner.work(opened, advance)
        except KeyboardInterrupt:
            raise TuneInterrupted(f"Interrupted. The study '{name}' in {url} stays usable; the same command "
                                  f"continues it.") from None
    if not report:
        return None
    keys, cols, rows = trial_rows(opened)
    best = best_recipe(opened, recipe, list(overrides), registry, folder)
    files, skipped = plots(opened, folder)
    return Tuned(folder, name, url, keys, cols, rows, best, ([best["recipe"]] if best else []) + files, skipped)


def _side_by_side(recipe: Any, space: Any, trials: int, overrides: list[str], url: str, name: str, jobs: int,
                  heartbeat: int, folder: Path, study: Any, advance: Any) -> None:
    """`jobs` workers, each `cvaekit tune` in a process of its own sharing the study, the cores
    divided among them; a worker that fails is named with the end of its output."""
    recipe = as_file(recipe, folder / "recipe.yaml")
    space = as_file(space, folder / "space.yaml")
    env = worker_env(jobs)
    (folder / "logs").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "cvaekit", "tune", str(recipe), "--space", str(space), "--trials", str(trials),
               "--storage", url, "--study", name, "--heartbeat", str(heartbeat), "--worker", "-q"]
    for item in overrides:
        command += ["--set", item]
    workers = []
    for i in range(jobs):
        log = (folder / "logs" / f"worker-{i + 1}.log").open("w")
        workers.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    try:
        while any(p.poll() is None for p, _ in workers):
            advance(sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False)))
            time.sleep(1.0)
    finally:
        for p, log in workers:
            p.wait()
            log.close()
    failed = [f"worker {i + 1}: " + log_tail(folder / "logs" / f"worker-{i + 1}.log", 3)
              for i, (p, _) in enumerate(workers) if p.returncode != 0]
    if failed:
        raise CvaekitError(f"{len(failed)} of {jobs} tune workers failed (their output is in {folder / 'logs'}): "
                           + "; ".join(failed))

