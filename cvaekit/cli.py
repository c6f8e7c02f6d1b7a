"""The `cvaekit` command: thin over the Python API, with errors as one clear paragraph."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cvaekit import __version__
from cvaekit.errors import CvaekitError
from cvaekit.plugins.registry import KINDS
from cvaekit.recipe import FIT_PRIOR_DEFAULTS
from cvaekit.runtime.notices import show_warnings_cleanly

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Text-to-image conditional VAEs from plugins and YAML recipes.")
out = Console()
err = Console(stderr=True)
_debug = False  # --debug: show the traceback behind an error too


def friendly(fn):
    """Print a CvaekitError as one paragraph and exit 2 (130 for an interrupt), no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CvaekitError as exc:
            if _debug:
                err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"cvaekit {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
         debug: bool = typer.Option(False, "--debug", help="Show the full traceback behind an error.")) -> None:
    """Train, sample and judge text-to-image CVAEs whose every part is a plugin."""
    global _debug
    _debug = debug
    show_warnings_cleanly(lambda text: err.print(f"[yellow]Warning:[/] {escape(text)}", highlight=False, soft_wrap=True))


@app.command("run")
@friendly
def run_cmd(
    recipe: Optional[Path] = typer.Argument(None, help="Recipe YAML (optional with --resume)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.epochs=5 (value parsed as YAML)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train (and evaluate at each checkpoint) what a recipe describes."""
    from cvaekit.training.run import train

    path = train(recipe, overrides=set_, resume=resume, progress=not quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
        out.print(f"Run folder: [bold]{path}[/]")


@app.command("prepare")
@friendly
def prepare_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set data.image_size=64 (value parsed as YAML)."),
    device: Optional[str] = typer.Option(None, "--device", help="Where the text encoder runs (default: the recipe's train.device)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fill the caches a recipe uses before training: decode its images, encode its captions."""
    from cvaekit.training.prepare import prepare

    for line in prepare(recipe, overrides=set_, device=device, progress=not quiet).lines():
        out.print(line, soft_wrap=True, markup=False)


@app.command("list-components")
@friendly
def list_components(
    kind: Optional[str] = typer.Option(None, "--kind", help=f"Only this kind: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every registered component: kind, name, origin and summary; plugins that failed too."""
    from cvaekit.errors import UnknownComponentError, choices_text, did_you_mean
    from cvaekit.plugins.loading import get_registry

    if kind is not None and kind not in KINDS:
        raise UnknownComponentError(f"Unknown kind '{kind}'.{did_you_mean(kind, KINDS)} Valid kinds: {choices_text(KINDS)}.")
    registry = get_registry()
    rows = [{"kind": c.kind, "name": c.name, "origin": c.origin, "summary": c.summary}
            for c in registry.of_kind(kind)]
    failures = [{"plugin": f.plugin, "origin": f.origin, "error": f.error, "partial": f.partial}
                for f in registry.failures]
    if as_json:
        print(json.dumps({"components": rows, "failed_plugins": failures}, indent=2))
        return
    table = Table(title="cvaekit components")
    for col in ("kind", "name", "origin"):  # names stay whole on an 80-column terminal
        table.add_column(col, no_wrap=True)
    table.add_column("summary", overflow="fold", ratio=1)
    for r in rows:
        table.add_row(*(escape(r[k]) for k in ("kind", "name", "origin", "summary")))
    for f in failures:
        label = "[red]name taken[/]" if f["partial"] else "[red]failed[/]"
        table.add_row(label, escape(f["plugin"]), escape(f["origin"]), f"[red]{escape(f['error'])}[/]")
    out.print(table)


@app.command("generate")
@friendly
def generate_cmd(
    run: Path = typer.Argument(..., help="A run folder."),
    texts: list[str] = typer.Argument(..., help="Words (label runs) or captions (caption runs), one row each."),
    n: int = typer.Option(8, "-n", help="Images per text, 1 or more (with --interpolate: steps, 2 to 64)."),
    output: Path = typer.Option(Path("samples.png"), "-o", "--output", help="PNG file to write."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    temperature: float = typer.Option(1.0, "--temperature", "-t",
                                      help="Spread of z about the prior's most typical z: 1 samples the prior; below 1, more typical and less varied images; 0, the most typical z itself (the prior's mode). 0 or more."),
    interpolate: bool = typer.Option(False, "--interpolate",
                                     help="Walk from the first text to the second at a fixed z, in -n steps, as one strip."),
) -> None:
    """Sample images for each text from a trained run, as one labelled grid (or, with
    --interpolate "text A" "text B", the strip between two texts)."""
    from cvaekit.serving.generate import generate
    from cvaekit.serving.generate import interpolate as interpolate_texts

    if interpolate:
        if len(texts) != 2:
            raise CvaekitError(f"--interpolate walks between exactly two texts; got {len(texts)}: "
                               + ", ".join(repr(t) for t in texts) + ".")
        path = interpolate_texts(run, texts[0], texts[1], steps=n, out=output, checkpoint=checkpoint,
                                 seed=seed, temperature=temperature)
    else:
        path = generate(run, texts, n=n, out=output, checkpoint=checkpoint, seed=seed, temperature=temperature)
    out.print(f"Wrote [bold]{path}[/]")


@app.command("serve")
@friendly
def serve_cmd(
    runs: list[str] = typer.Argument(..., help="Run folders; RUN@EPOCH serves that checkpoint (one run's checkpoints side by side)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 opens the page to the network."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default) or an epoch, for every run without @EPOCH."),
    device: str = typer.Option("auto", "--device", help="auto (the GPU when there is one), cpu, cuda, ..."),
) -> None:
    """A page to try trained runs: generate from a text, compare runs, walk the latent space."""
    from cvaekit.serving.service import load_runs

    served = load_runs(runs, checkpoint, device)  # a missing run or checkpoint: an error before any page
    from cvaekit.serving.page import launch

    out.print(f"Serving {', '.join(r.label for r in served)} on [bold]http://{host}:{port}[/] (Ctrl-C stops)")
    launch(served, host=host, port=port)


@app.command("describe")
@friendly
def describe_cmd(
    kind: str = typer.Argument(..., help=f"One of: {', '.join(KINDS)}."),
    name: str = typer.Argument(..., help="The component's registered name (see list-components)."),
) -> None:
    """A component's parameters (types, defaults), origin, and a recipe snippet that uses it."""
    from cvaekit.recipe.describe import describe_component, render_component

    print(render_component(describe_component(kind, name)))


@app.command("evaluate")
@friendly
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A run folder."),
    checkpoints: str = typer.Option("all", "--checkpoints", help="'all' kept checkpoints, 'last', or epochs: 10,20."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the recipe's eval.metrics)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Judge on the first N test images (default: the recipe's eval.limit)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Also draw samples and reconstructions by checkpoint."),
    prior: str = typer.Option("auto", "--prior", help="Sample from: auto (the fitted prior where fit-prior fitted one, else the trained one), trained, fitted."),
) -> None:
    """Metrics at every checkpoint of a run, as a table, merged into evaluation.csv/.json in the
    run (earlier measurements stay); each row says which prior it sampled from."""
    from cvaekit.evaluation.checkpoints import evaluate
    from cvaekit.evaluation.tables import metrics_table

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    result = evaluate(run, checkpoints, names, device=device, limit=limit, figures=figures, prior=prior)
    title = f"{result.run.name}: metrics by checkpoint ({result.rows[0]['test_images']} test images)"
    out.print(metrics_table(result.rows, ["epoch", "prior"], result.columns, title))
    for note in result.notes:
        err.print(f"[yellow]Note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    for path in result.files:
        rows = f" ({len(result.table)} rows, these merged in)" if path.suffix == ".csv" else ""
        out.print(f"Wrote [bold]{escape(str(path))}[/]{rows}")


@app.command("fit-prior")
@friendly
def fit_prior_cmd(
    run: Path = typer.Argument(..., help="A trained run folder."),
    prior: str = typer.Option("flow", "--prior", help="The prior component to fit (see list-components --kind prior)."),
    set_: list[str] = typer.Option([], "--set", help="A parameter of the prior: --set transforms=4 (value parsed as YAML)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="'last' (default), an epoch, or a path."),
    epochs: int = typer.Option(FIT_PRIOR_DEFAULTS["epochs"], "--epochs", help="Passes over the codes."),
    lr: float = typer.Option(FIT_PRIOR_DEFAULTS["lr"], "--lr", help="Adam's learning rate."),
    batch_size: int = typer.Option(FIT_PRIOR_DEFAULTS["batch_size"], "--batch-size", help="Codes per step."),
    draws: int = typer.Option(FIT_PRIOR_DEFAULTS["draws"], "--draws", help="Codes per training image (a caption drawn at random for each)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fit a prior to a trained run's codes (the model frozen) and save it in the run:
    generate, evaluate and serve then sample from it. Prints the metrics before and after."""
    from cvaekit.training.fit_prior import before_after_table, fit_prior

    result = fit_prior(run, prior, set_, checkpoint=checkpoint, epochs=epochs, lr=lr, batch_size=batch_size, draws=draws,
                       device=device, progress=not quiet)
    if result is None:  # a process other than 0 under torchrun: process 0 reports
        return
    out.print(before_after_table(result))
    out.print(f"Fitted in {result.seconds:.0f} s. Saved [bold]{escape(str(result.path))}[/]; "
              f"generate, evaluate and serve use it for this checkpoint.")
    if result.figure:
        out.print(f"Wrote [bold]{escape(str(result.figure))}[/]")


@app.command("sweep")
@friendly
def sweep_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML."),
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


cache_app = typer.Typer(help="cvaekit's caches (decoded pictures, encoded captions, data, judges): alone, lists each "
                             "with what it holds and its size; 'cache clear' removes them.")
app.add_typer(cache_app, name="cache")


@cache_app.callback(invoke_without_command=True)
@friendly
def cache_list(ctx: typer.Context) -> None:
    """Each cache under $CVAEKIT_CACHE (default ~/.cache/cvaekit): what it holds and its size."""
    from cvaekit.caches.inventory import listing

    for part in listing() if ctx.invoked_subcommand is None else []:
        out.print(part, highlight=False, markup=False) if isinstance(part, str) else out.print(part)


@cache_app.command("clear")
@friendly
def cache_clear(
    images: bool = typer.Option(False, "--images", help="Decoded pictures (your folders, COCO, ...)."),
    text: bool = typer.Option(False, "--text", help="Captions encoded by a frozen text encoder."),
    data: bool = typer.Option(False, "--data", help="Data set files extracted or downloaded."),
    judges: bool = typer.Option(False, "--judges", help="Classifiers the label metrics trained."),
    everything: bool = typer.Option(False, "--all", help="All of the above."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
) -> None:
    """Remove caches (rebuilt when next needed); lists them and asks first unless --yes."""
    from cvaekit.caches.inventory import chosen, clear_caches, size_text, to_clear

    doomed, shown = to_clear(chosen(images, text, data, judges, everything))
    out.print(shown, markup=False) if isinstance(shown, str) else out.print(shown)
    if doomed and not yes and not typer.confirm(f"Remove these {len(doomed)} caches?", default=False):
        out.print("Nothing removed.")
        raise typer.Exit(1)
    if doomed:
        out.print(f"Removed {len(doomed)} caches, {size_text(clear_caches(doomed))}; each is rebuilt when next needed.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
