"""The commands that tell: `list-components`, `describe`, `recipes`, `cache`."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cvaekit.cli.common import app, friendly, out
from cvaekit.plugins.registry import KINDS


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


@app.command("describe")
@friendly
def describe_cmd(
    kind: str = typer.Argument(..., help=f"One of: {', '.join(KINDS)}."),
    name: str = typer.Argument(..., help="The component's registered name (see list-components)."),
) -> None:
    """A component's parameters (types, defaults), origin, and a recipe snippet that uses it."""
    from cvaekit.recipe.describe import describe_component, render_component

    print(render_component(describe_component(kind, name)))


recipes_app = typer.Typer(help="The recipes that come with cvaekit: alone, lists them with a line each; "
                               "'recipes show NAME' prints one to copy. `cvaekit run NAME` trains one.")
app.add_typer(recipes_app, name="recipes")


@recipes_app.callback(invoke_without_command=True)
@friendly
def recipes_list(ctx: typer.Context) -> None:
    """Each built-in recipe: its name and what it trains."""
    from cvaekit.recipe.builtin import builtin_recipes, summary

    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="Built-in recipes (cvaekit run NAME; cvaekit recipes show NAME prints one)")
    table.add_column("name", no_wrap=True)
    table.add_column("what it trains", overflow="fold", ratio=1)
    for name, path in builtin_recipes().items():
        table.add_row(name, escape(summary(path)))
    out.print(table)


@recipes_app.command("show")
@friendly
def recipes_show(name: str = typer.Argument(..., help="A built-in recipe's name (see `cvaekit recipes`).")) -> None:
    """Print a built-in recipe, to copy and change."""
    from cvaekit.recipe.builtin import builtin_text

    print(builtin_text(name), end="")


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
