"""CLI fuzz: N seeded command lines through every `cvaekit` command, none may end in a traceback.

    python benchmarks/cli_fuzz.py [-n 300] [--seed 0] [--show 10] [--timeout 20]

A small run is trained first (Fashion-MNIST, an MLP, seconds), and broken copies of it made
(checkpoints missing, corrupt or cut short; recipe missing or corrupt). Each case is a
command's working line (`cvaekit.testing.cli_fuzz`) with one to three things broken: a value
of every wrong kind, a part dropped, an unknown option. It runs in this process through
typer's CliRunner, with the cache in a temp folder and the Hugging Face hub offline; `serve`
is checked up to the launch, never served. A case that still runs after `--timeout`
seconds (a working line, say fit-prior for many epochs) is stopped and counted as ran.
Prints how many gave a clean error, ran, or ended in a traceback (the target is 0), by
command, and the first tracebacks with their command lines.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import track
from typer.testing import CliRunner

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvaekit.cli import app
from cvaekit.serving import page
from cvaekit.testing.cli_fuzz import Places, command_lines, run_line, tiny_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10, help="How many tracebacks to print.")
    parser.add_argument("--timeout", type=int, default=20, help="Seconds a case may run before it is stopped.")
    args = parser.parse_args()
    console = Console()
    page.launch = lambda *a, **k: None  # options are checked before the launch; nothing is served
    runner = CliRunner()
    counts, by_command, tracebacks = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(CVAEKIT_CACHE=f"{tmp}/cache", HF_HUB_OFFLINE="1", COLUMNS="200")
        os.chdir(tmp)
        from cvaekit.training import train

        run = train(tiny_recipe(Path(tmp) / "runs"), progress=False)
        places = Places.make(Path(tmp) / "places", run)
        start = time.perf_counter()
        for argv in track(command_lines(places, args.n, args.seed), description="fuzzing commands", console=console):
            kind, result = run_line(runner, app, argv, args.timeout)
            counts[kind] += 1
            by_command[(argv[0], kind)] += 1
            if kind == "traceback":
                error = f"{type(result.exception).__name__}: {result.exception}"[:300]
                tracebacks.append((shlex.join(argv)[:300], error, result.output[-600:]))
    seconds = time.perf_counter() - start
    console.print(f"{args.n} command lines (seed {args.seed}, {seconds:.0f} s): {counts['clean']} clean errors, "
                  f"{counts['ran']} ran, {counts['cut short']} ran until stopped, {counts['traceback']} tracebacks")
    commands = sorted({c for c, _ in by_command})
    for command in commands:
        console.print(f"  {command:16} " + ", ".join(f"{k} {by_command[command, k]}" for k in
                                                      ("clean", "ran", "cut short", "traceback") if by_command[command, k]))
    for argv, error, output in tracebacks[:args.show]:
        console.print(f"[red]{error}[/]\n  cvaekit {argv}", markup=True, highlight=False)


if __name__ == "__main__":
    main()
