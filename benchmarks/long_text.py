"""Long-text benchmark: the offline shapes_* recipes (each injection, each offline text
encoder) trained for the same budget, in one table.

Caption fidelity is the share of generated images that the shapes checker accepts for their
caption (right shapes, colours, sizes and places), over the first test captions. "chance"
is the same images judged against shuffled captions: what a model that ignores the caption
scores. "real" is the checker on the real test images (its ceiling).

    python benchmarks/long_text.py --epochs 4
    python benchmarks/long_text.py --epochs 10 --recipes recipes/shapes_film.yaml --json out.json

On a CPU shared with other work, one torch thread per process is far faster than two
(`--threads`, default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="*", type=Path, default=sorted((ROOT / "recipes").glob("shapes_*.yaml")),
                   help="Recipes to train (default: every recipes/shapes_*.yaml).")
    p.add_argument("--epochs", type=int, default=4, help="Epochs per recipe (the same for all).")
    p.add_argument("--images", type=int, default=None, help="Train on the first N images only.")
    p.add_argument("--captions", type=int, default=200, help="Test captions judged for fidelity.")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process.")
    p.add_argument("--runs-dir", type=Path, default=None, help="Keep the runs here (default: a temp folder).")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="Extra override for every recipe, e.g. --set train.lr=2e-3.")
    p.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON.")
    return p.parse_args()


def placements(injections: list[dict]) -> str:
    """'film e1,2 d0': each injection's name, then its encoder (e) and decoder (d) stages."""
    by_name: dict[str, dict[str, list[str]]] = {}
    for inj in injections:
        net = inj.get("net", "encoder")[0]
        by_name.setdefault(inj["name"], {}).setdefault(net, []).append(str(inj.get("at", 0)))
    return "; ".join(f"{n} " + " ".join(f"{net}{','.join(at)}" for net, at in nets.items())
                     for n, nets in by_name.items()) or "-"


def bench_one(path: Path, args: argparse.Namespace, runs_dir: Path) -> dict:
    from cvaekit.recipe import read_yaml
    from cvaekit.runs import RunDir
    from cvaekit.training import train

    raw = read_yaml(path)
    model = raw["model"]
    name = lambda c: c if isinstance(c, str) else c["name"]  # noqa: E731
    row = {"recipe": path.stem, "conditioner": name(model["conditioner"]),
           "injections": placements(model.get("injections", []))}
    metrics = yaml.safe_dump([{"name": "nelbo"}, {"name": "shapes_fidelity", "n_captions": args.captions}],
                             default_flow_style=True).strip()
    overrides = [f"train.epochs={args.epochs}", f"train.checkpoint_every={args.epochs}",
                 f"runs_dir={runs_dir}", f"eval.metrics={metrics}", "eval.samples_per_condition=8",
                 *args.overrides]
    if args.images:
        overrides.append(f"train.limit={args.images}")
    start = time.perf_counter()
    try:
        run = RunDir(train(path, overrides=overrides, progress=False))
    except Exception as exc:  # noqa: BLE001 - one recipe failing (say, no local model) is a row, not a crash
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    records = run.records()
    last_train = [r for r in records if r["kind"] == "train"][-1]
    last_eval = [r for r in records if r["kind"] == "eval"][-1]
    return {**row, "seconds": time.perf_counter() - start, "train_loss": last_train["loss"],
            "test_nelbo": last_eval["nelbo"], "fidelity": last_eval["fidelity"],
            "chance": last_eval["fidelity_shuffled"], "real": last_eval["fidelity_real"], "run": str(run.path)}


def table(rows: list[dict], args: argparse.Namespace) -> Table:
    images = f"{args.images} images" if args.images else "all images"
    t = Table(title=f"Long-text CVAEs on shapes_captions: {args.epochs} epochs, {images}, "
                    f"fidelity over {args.captions} test captions")
    for col, justify in [("recipe", "left"), ("conditioner", "left"), ("injections", "left"),
                         ("train s", "right"), ("final train loss", "right"), ("test NELBO", "right"),
                         ("caption fidelity", "right"), ("chance (shuffled)", "right"), ("real data", "right")]:
        t.add_column(col, justify=justify)
    for r in rows:
        if "error" in r:
            t.add_row(r["recipe"], r["conditioner"], r["injections"], f"[red]failed: {r['error']}[/]", "", "", "", "", "")
            continue
        t.add_row(r["recipe"], r["conditioner"], r["injections"], f"{r['seconds']:.0f}",
                  f"{r['train_loss']:.1f}", f"{r['test_nelbo']:.1f}", f"{r['fidelity']:.3f}",
                  f"{r['chance']:.3f}", f"{r['real']:.3f}")
    return t


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 150))
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp)
        rows = []
        for path in args.recipes:
            console.print(f"training {path.name} ...")
            rows.append(bench_one(path, args, runs_dir))
            console.print(table(rows[-1:], args) if "error" not in rows[-1] else rows[-1]["error"])
        console.print(table(rows, args))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
