"""Reproduce the shape of the study's Table 3 (metrics by checkpoint) and Table 4 (metrics
by latent size), with its Figures 3, 4 and 6 (samples by epoch, samples by setting,
reconstructions by epoch) written beside them.

Offline, on the two data sets this machine has:

- shapes_captions, the COCO stand-in (recipes/shapes_early.yaml: learned text encoder,
  conv nets, early concat), judged by nelbo, recon, shapes_fidelity (does the image show
  what the caption asks) and FID on a fixed random conv net (`fid_random`);
- Fashion-MNIST, the study's short-text stage (recipes/fashion_onehot.yaml), judged by
  nelbo, recon, cond_accuracy and FID on the judge classifier's features (`fid_judge`);

each trained once with a checkpoint per epoch (Table 3) and swept over latent sizes 16 to
128 (Table 4). CLIP score needs a real CLIP; pass `--clip PATH_OR_ID` to add it.

    python benchmarks/study_tables.py                 # small budget: ~10 minutes on 2 CPU cores
    python benchmarks/study_tables.py --budget full   # the recipes' own data sizes and epochs

With COCO, CLIP and Inception at hand (a GPU machine), the same script gives the study's
own tables: CLIP score and Inception FID at epochs 50..300, and latent sizes 128..1024:

    python benchmarks/study_tables.py --recipe recipes/coco_midinject.yaml \\
        --set train.epochs=300 --set train.checkpoint_every=50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402

from cvaekit.evaluate import metrics_table  # noqa: E402
from cvaekit.runs import RunDir  # noqa: E402
from cvaekit.sweep import sweep  # noqa: E402
from cvaekit.training import train  # noqa: E402

console = Console(width=160)
ROOT = Path(__file__).resolve().parent.parent

# Per study: recipe, metrics, and the overrides of each budget for Table 3 (the run) and
# Table 4 (each point of the sweep; checkpoints only at its end).
STUDIES = {
    "shapes": {
        "recipe": ROOT / "recipes/shapes_early.yaml",
        "metrics": "[nelbo, recon, shapes_fidelity, {name: fid, features: random}]",
        "grid": "model.latent_dim=16,32,64,128",
        "small": {"table3": ["data.n_train=1500", "train.epochs=3", "train.checkpoint_every=1", "eval.limit=300"],
                  "table4": ["data.n_train=1500", "train.epochs=2", "train.checkpoint_every=2", "eval.limit=300"]},
        "full": {"table3": ["train.checkpoint_every=2"], "table4": []},
    },
    "fashion": {
        "recipe": ROOT / "recipes/fashion_onehot.yaml",
        "metrics": "[nelbo, recon, cond_accuracy, {name: fid, features: judge}]",
        "grid": "model.latent_dim=16,32,64,128",
        "small": {"table3": ["train.limit=6000", "train.epochs=3", "train.checkpoint_every=1", "eval.limit=1000"],
                  "table4": ["train.limit=6000", "train.epochs=2", "train.checkpoint_every=2", "eval.limit=1000"]},
        "full": {"table3": [], "table4": ["train.checkpoint_every=50"]},
    },
}
COCO = {  # --recipe: the study's own metrics and latent sizes
    "metrics": "[nelbo, {name: clip_score, model: CLIP}, {name: fid, features: inception}]",
    "grid": "model.latent_dim=128,256,512,1024",
}


def table3(recipe: Path, overrides: list[str], title: str) -> tuple[list[dict], list[str], Path]:
    """Train once; the metrics the run measured at each checkpoint (what `cvaekit evaluate`
    reprints), plus its samples- and reconstructions-by-epoch figures."""
    run = train(recipe, overrides=overrides, progress=False)
    rows = [{k: v for k, v in r.items() if k not in ("kind", "step")}
            for r in RunDir(run).records() if r.get("kind") == "eval"]
    columns = [k for k in rows[-1] if k not in ("epoch", "checkpoint")]
    console.print(metrics_table(rows, ["epoch"], columns, f"Table 3, {title}: metrics by checkpoint ({run.name})"))
    return rows, columns, run


def table4(recipe: Path, grid: str, overrides: list[str], title: str):
    result = sweep(recipe, [grid], overrides, progress=False)
    keys = [k for k in result.keys if k != "run"]
    console.print(metrics_table(result.rows, keys, [c for c in result.columns if c != "epoch"],
                                f"Table 4, {title}: metrics by latent size ({result.folder.name})"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=["small", "full"], default="small",
                        help="small: a few epochs on part of the data (~10 min on 2 CPU cores); full: the recipes' own")
    parser.add_argument("--only", choices=sorted(STUDIES), action="append", help="Run only this study (repeatable).")
    parser.add_argument("--recipe", type=Path, help="A study recipe (recipes/coco_*.yaml) instead of the offline ones.")
    parser.add_argument("--clip", default=None, help="CLIP (hub id or folder) for clip_score; with --recipe, "
                                                     "default openai/clip-vit-base-patch32.")
    parser.add_argument("--grid", default=None, help="The Table 4 grid (default: latent 16..128; 128..1024 with --recipe).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Extra override for every run.")
    parser.add_argument("--runs-dir", default="runs/study_tables", help="Where runs and sweeps go.")
    args = parser.parse_args(argv)

    studies = {}
    if args.recipe:
        clip = args.clip or "openai/clip-vit-base-patch32"
        studies[args.recipe.stem] = {"recipe": args.recipe, "metrics": COCO["metrics"].replace("CLIP", clip),
                                     "grid": args.grid or COCO["grid"], "table3": [], "table4": []}
    else:
        for name in args.only or STUDIES:
            study = STUDIES[name]
            metrics = study["metrics"]
            if args.clip:
                metrics = metrics.replace("[nelbo,", f"[nelbo, {{name: clip_score, model: '{args.clip}'}},")
            studies[name] = {"recipe": study["recipe"], "metrics": metrics, "grid": args.grid or study["grid"],
                             **study[args.budget]}

    summary = {}
    for name, study in studies.items():
        common = [f"runs_dir={args.runs_dir}", f"eval.metrics={study['metrics']}", *args.overrides]
        start = time.perf_counter()
        rows, columns, run = table3(study["recipe"], [*study["table3"], *common], name)
        result = table4(study["recipe"], study["grid"], [*study["table4"], *common], name)
        seconds = time.perf_counter() - start
        console.print(f"[dim]{name}: {seconds:.0f} s; figures in {run} and {result.folder}[/]")
        summary[name] = {"table3": {"run": str(run), "metrics": columns, "rows": rows},
                         "table4": {"folder": str(result.folder), "rows": result.rows}, "seconds": seconds}
    out = Path(args.runs_dir) / f"study_tables-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"budget": args.budget, "argv": sys.argv[1:], "studies": summary}, indent=2, default=str))
    console.print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
