"""How long the `cvaekit serve` page takes to answer: a Generate grid, a Compare and a walk,
as Python calls and through the page's HTTP API (gradio_client), on a CPU by default.

The target is a Generate grid in under a second for the offline recipes on a CPU. Timing
depends on the network's shape, not its training, so without RUN arguments each offline
recipe is trained for one short epoch first (into a temporary folder).

    python benchmarks/serve_latency.py                      # quickstart and shapes_midinject
    python benchmarks/serve_latency.py runs/quickstart-<stamp> runs/shapes_midinject-<stamp>
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)
import torch
from rich.console import Console
from rich.table import Table

from cvaekit.serving import compare_picture, generate_picture, load_runs, walk_picture
from cvaekit.training import train
from cvaekit.testing.local import free_port

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"quickstart": "sneaker", "shapes_midinject": "a small red circle above a large blue square"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="Run folders (default: train each offline recipe for one short epoch).")
    p.add_argument("--text", action="append", help="Text per run, in order (default: one that suits the recipe).")
    p.add_argument("-n", type=int, default=8, help="Images per grid (the page's default: 8).")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
    return p.parse_args()


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def quick_runs(folder: Path) -> list[str]:
    overrides = ["train.epochs=1", "train.limit=512", "eval.metrics=[nelbo]", "eval.limit=128",
                 f"runs_dir={folder}", "data.n_train=512", "data.n_test=128"]
    runs = []
    for name in OFFLINE:
        sets = [o for o in overrides if not o.startswith("data.n_") or name.startswith("shapes")]
        runs.append(str(train(ROOT / "recipes" / f"{name}.yaml", overrides=sets, progress=False)))
    return runs


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        runs = load_runs(args.runs or quick_runs(Path(tmp)), device=args.device)
        texts = args.text or [OFFLINE.get(r.trained.recipe.name, "a red circle") if not r.classes else "sneaker"
                              for r in runs]
        from gradio_client import Client

        from cvaekit.page import launch

        port = free_port()
        page = launch(runs, port=port, block=False)
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        table = Table(title=f"serve: median seconds per request ({args.device}, torch threads "
                            f"{torch.get_num_threads()}, n={args.n})")
        for col in ("run", "text", "generate (Python)", "generate (HTTP)", "walk, 8 steps (Python)"):
            table.add_column(col)
        try:
            for run, text in zip(runs, texts):
                python = median_seconds(lambda: generate_picture(run, text, args.n), args.repeats)
                http = median_seconds(lambda: client.predict(run.label, text, args.n, 1.0, 0,
                                                             api_name="/generate"), args.repeats)
                walk = median_seconds(lambda: walk_picture(run, "seeds", text, seed_a=0, seed_b=1, steps=8),
                                      max(3, args.repeats // 4))
                table.add_row(run.label, text, f"{python:.3f}", f"{http:.3f}", f"{walk:.3f}")
            if len(runs) > 1:
                both = median_seconds(lambda: compare_picture(runs, texts[0], args.n), max(3, args.repeats // 4))
                console.print(f"compare over {len(runs)} runs (Python, labelled figure): {both:.3f} s")
        finally:
            page.close()
        console.print(table)


if __name__ == "__main__":
    main()
