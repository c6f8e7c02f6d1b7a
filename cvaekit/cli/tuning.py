"""`cvaekit tune`: Optuna over a recipe's settings, on one machine or many sharing a database."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cvaekit.cli.common import app, friendly, out


@app.command("tune")
@friendly
def tune_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML, or a built-in recipe's name."),
    space: Path = typer.Option(..., "--space", help="The search space YAML: params, metric, direction, at, sampler, pruner (docs/tracking-and-tuning.md)."),
    trials: int = typer.Option(..., "--trials", help="Finished trials (complete or pruned) the study should have, counting every worker's."),
    storage: Optional[str] = typer.Option(None, "--storage", help="The study's database: postgresql://user@host/db to share it across machines (default: SQLite in the tune folder)."),
    study: Optional[str] = typer.Option(None, "--study", help="The study's name (default: the recipe's name)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Workers on this machine, each in its own process, the cores divided among them."),
    set_: list[str] = typer.Option([], "--set", help="Override a key for every trial: --set train.epochs=5."),
    heartbeat: int = typer.Option(60, "--heartbeat", help="Seconds between a worker's heartbeats; a trial silent for twice that is failed and retried."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    worker: bool = typer.Option(False, "--worker", hidden=True, help="Run trials only (a worker that --jobs started)."),
) -> None:
    """Search a recipe's settings with Optuna (TPE, pruning); each trial a normal run folder. Prints the
    trials, writes the best recipe and the plots."""
    from cvaekit.evaluation.tables import metrics_table
    from cvaekit.training.tune import tune

    result = tune(recipe, space, trials, overrides=set_, storage=storage, study=study, jobs=jobs,
                  heartbeat=heartbeat, progress=not quiet, report=not worker)
    if result is None:
        return
    out.print(metrics_table(result.rows, result.keys, result.columns, f"study {result.study}: trials"))
    if result.best:
        out.print(f"Best: trial {result.best['trial']}, value {result.best['value']:.6g}, run {escape(str(result.best['run']))}",
                  soft_wrap=True)
    for path in result.files:
        out.print(f"Wrote [bold]{escape(str(path))}[/]", soft_wrap=True)
    for line in result.skipped:
        out.print(f"Not drawn yet: {escape(line)}", soft_wrap=True)
    out.print(f"Study: {escape(result.storage)} (view it with: optuna-dashboard {escape(result.storage)})", soft_wrap=True)
