"""The commands that train: `run` (a recipe's path or a built-in recipe's name), `prepare`,
`sweep` and `fit-prior`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cvaekit.cli.common import app, friendly, out
from cvaekit.recipe import FIT_PRIOR_DEFAULTS


@app.command("run")
@friendly
def run_cmd(
    recipe: Optional[Path] = typer.Argument(None, help="Recipe YAML, or a built-in recipe's name (`cvaekit recipes`); optional with --resume."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.epochs=5 (value parsed as YAML)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its last checkpoint."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Train in runs_dir/NAME; the same command again (or a torchrun restart) continues it from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train (and evaluate at each checkpoint) what a recipe describes."""
    from cvaekit.training.run import train

    path = train(recipe, overrides=set_, resume=resume, run_name=run_name, progress=not quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
        out.print(f"Run folder: [bold]{path}[/]")


@app.command("prepare")
@friendly
def prepare_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML, or a built-in recipe's name."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set data.image_size=64 (value parsed as YAML)."),
    device: Optional[str] = typer.Option(None, "--device", help="Where the text encoder runs (default: the recipe's train.device)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fill the caches a recipe uses before training: decode its images, encode its captions."""
    from cvaekit.training.prepare import prepare

    for line in prepare(recipe, overrides=set_, device=device, progress=not quiet).lines():
        out.print(line, soft_wrap=True, markup=False)


@app.command("sweep")
@friendly
def sweep_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML, or a built-in recipe's name."),
    grid: list[str] = typer.Option(..., "--grid", help="A key and its values: --grid model.latent_dim=128,256,512 (repeatable; all combinations run)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key for every run: --set train.epochs=5."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Grid points trained at once, each in its own process, the cores divided among them."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """One run per grid point, then a table of metrics by setting and a figure of samples side by side."""
    from cvaekit.evaluation.tables import metrics_table
    from cvaekit.training.sweep import sweep

    result = sweep(recipe, grid, set_, progress=not quiet, jobs=jobs)
    out.print(metrics_table(result.rows, result.keys, result.columns, f"{result.folder.name}: metrics by setting"))
    for path in result.files:
        out.print(f"Wrote [bold]{escape(str(path))}[/]")


@app.command("fit-prior")
@friendly
def fit_prior_cmd(
    run: str = typer.Argument(..., help="A trained run folder, an exported folder, or a hub id (then copied into a local run folder)."),
    prior: str = typer.Option("flow", "--prior", help="The prior component to fit (see list-components --kind prior)."),
    set_: list[str] = typer.Option([], "--set", help="A parameter of the prior: --set transforms=4 (value parsed as YAML)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
    epochs: int = typer.Option(FIT_PRIOR_DEFAULTS["epochs"], "--epochs", help="Passes over the codes."),
    lr: float = typer.Option(FIT_PRIOR_DEFAULTS["lr"], "--lr", help="Adam's learning rate."),
    batch_size: int = typer.Option(FIT_PRIOR_DEFAULTS["batch_size"], "--batch-size", help="Codes per step."),
    draws: int = typer.Option(FIT_PRIOR_DEFAULTS["draws"], "--draws", help="Codes per training image (a caption drawn at random for each)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    into: Optional[Path] = typer.Option(None, "--into", help="Where an exported model or hub id is copied to fit in (default runs/<name>-<timestamp>)."),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder", help="A local copy of the model's pretrained text encoder."),
) -> None:
    """Fit a prior to a trained run's codes (the model frozen) and save it in the run:
    generate, evaluate and serve then sample from it. Prints the metrics before and after."""
    from cvaekit.training.fit_prior import before_after_table, fit_prior

    result = fit_prior(run, prior, set_, checkpoint=checkpoint, epochs=epochs, lr=lr, batch_size=batch_size, draws=draws,
                       device=device, progress=not quiet, into=into, text_encoder=text_encoder)
    if result is None:  # a process other than 0 under torchrun: process 0 reports
        return
    if Path(result.run).resolve() != Path(run).resolve():
        out.print(f"Fitted in a local copy of {escape(run)}: [bold]{escape(str(result.run))}[/]", soft_wrap=True)
    out.print(before_after_table(result))
    out.print(f"Fitted in {result.seconds:.0f} s. Saved [bold]{escape(str(result.path))}[/]; "
              f"generate, evaluate and serve use it for this checkpoint.")
    if result.figure:
        out.print(f"Wrote [bold]{escape(str(result.figure))}[/]")
