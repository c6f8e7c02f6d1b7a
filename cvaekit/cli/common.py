"""What every command shares: the app, its consoles, `--version` and `--debug`, and errors
shown as one clear paragraph."""

from __future__ import annotations

import functools
import traceback

import typer
from rich.console import Console
from rich.markup import escape

from cvaekit import __version__
from cvaekit.errors import CvaekitError
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
