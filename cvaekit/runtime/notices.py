"""Warnings as the `cvaekit` command shows them: cvaekit's own (a category it defines, or
raised from its code or a component's) as one line, "Warning: <message>", without Python's
file name, line number and source line; every other warning as Python shows it. The
processes `train.processes` starts show them the same way."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

ENV = "CVAEKIT_CLEAN_WARNINGS"  # set while they are shown cleanly, for the processes cvaekit starts
PACKAGE = str(Path(__file__).resolve().parents[1])


def ours(category: type, filename: str) -> bool:
    """Whether a warning is cvaekit's: its category is defined in cvaekit, or cvaekit's code raised it."""
    module = getattr(category, "__module__", "") or ""
    return module == "cvaekit" or module.startswith("cvaekit.") or str(filename).startswith(PACKAGE)


def one_line(text: str) -> None:
    print(f"Warning: {text}", file=sys.stderr, flush=True)


def show_warnings_cleanly(say: Callable[[str], None] = one_line) -> None:
    """From now on, cvaekit's warnings reach `say(message)` as one line of text; others are
    shown as before."""
    previous = warnings.showwarning
    if getattr(previous, "cvaekit_clean", False):
        previous = previous.previous

    def show(message, category, filename, lineno, file=None, line=None):
        if ours(category, filename):
            say(" ".join(str(message).split()))
        else:
            previous(message, category, filename, lineno, file, line)

    show.cvaekit_clean, show.previous = True, previous
    warnings.showwarning = show
    os.environ[ENV] = "1"


def inherit_clean_warnings() -> None:
    """In a process cvaekit started: show warnings cleanly when the one that started it did."""
    if os.environ.get(ENV) == "1":
        show_warnings_cleanly()
