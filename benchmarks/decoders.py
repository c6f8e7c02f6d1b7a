"""One recipe, two decoders: `deconv` (stride-2 transposed convolutions, the study's) against
`upsample` (resize then convolve, residual blocks), the same widths, seed and budget.

    python benchmarks/decoders.py recipes/fashion_conv.yaml --set train.epochs=3 --set train.limit=10000

Each way trains the recipe with only `model.decoder.name` changed (plus the --set overrides,
alike for both) and prints the last evaluation's figures (the recipe's own metrics) and the
checkerboard: the samples' share of spectral energy at period 2 over real test pictures'
(1 = as real; `cvaekit.evaluation.spectra`). Timings depend on what else runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: sets the thread policy)
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cvaekit.assembly import build_dataset, load_run
from cvaekit.evaluation.spectra import checkerboard
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.training import train

WAYS = ("deconv", "upsample")
SKIP = {"kind", "epoch", "step", "checkpoint", "prior", "test_images"}


@torch.no_grad()
def samples_against_real(run: Path, n: int) -> float:
    """The checkerboard of one sample per test condition (the first n) against those test pictures."""
    trained = load_run(run)
    test = build_dataset(trained.recipe, get_registry()).test.head(n)
    raw = test.conditions if test.labelled else [caps[0] for caps in test.conditions]
    samples = torch.cat([trained.model.sample(raw[i:i + 100], generator=torch.Generator().manual_seed(i))
                         for i in range(0, len(test), 100)])
    return checkerboard(samples, test.images)


def last_eval(run: Path) -> dict[str, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    row = [r for r in rows if r["kind"] == "eval"][-1]
    return {k: v for k, v in row.items() if k not in SKIP and isinstance(v, (int, float))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE, for both ways")
    parser.add_argument("--n", type=int, default=200, help="samples (and test pictures) for the checkerboard")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cvaekit-decoders-"))
    figures = {}
    for way in WAYS:
        start = time.perf_counter()
        recipe = load_recipe(args.recipe, [*args.overrides, f"model.decoder.name={way}", f"runs_dir={out / way}"])
        run = train(recipe, progress=False)
        seconds = time.perf_counter() - start
        figures[way] = {**last_eval(run), "checkerboard": samples_against_real(run, args.n), "seconds": seconds}
        print(f"{way}: {run}", flush=True)
        print(json.dumps(figures[way]), flush=True)
    table = Table(title=escape(f"{Path(args.recipe).stem}: deconv against upsample ({' '.join(args.overrides) or 'as written'})"))
    table.add_column("figure")
    for way in WAYS:
        table.add_column(way, justify="right")
    for key in figures[WAYS[0]]:
        table.add_row(key, *(f"{figures[w].get(key, float('nan')):.4g}" for w in WAYS))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
