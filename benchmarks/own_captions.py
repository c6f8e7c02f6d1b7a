"""A user's own captioned RGB pictures, before and after: the transposed-conv decoder with a
Bernoulli likelihood and an N(0, I) prior (cvaekit 0.1's own_captions) against the recipe as
it is now (a resize-then-conv decoder, a discretized logistic mixture, a flow prior given the
caption).

    python benchmarks/own_captions.py [--pictures 400] [--held-out 200] [--epochs 40] [--way both] [--set K=V] [--tiny]

It writes a captioned folder (imagefolder layout, train/ and test/ each with a metadata.jsonl)
of coloured shapes at 64x64 RGB, trains recipes/own_captions.yaml on it both ways (or one),
and prints per way:
- checkerboard: the share of the samples' spectral energy at the decoder's stride period
  (period 2, horizontal and vertical), over the same share in real pictures (1 = as real;
  the target is at most 1.5);
- bits per dimension (nelbo_bpd; a Bernoulli likelihood has none: its figure is not a
  likelihood of 8-bit colours);
- caption_match of samples, of real pictures (the ceiling) and their ratio (the target: at
  least 0.8), of reconstructions (z at the posterior mean: the decoder's ceiling; samples
  below it lose to the prior) and of shuffled captions (chance).
Each way's sample grid is written beside the folder. Timings depend on what else runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: sets the thread policy)
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from cvaekit.assembly import build_dataset, load_run
from cvaekit.evaluation.spectra import checkerboard
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.training import train

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "own_captions.yaml"
WAYS = {"before: deconv + bernoulli": ["model.decoder.name=deconv", "model.likelihood=null",  # 0.1's recipe
                                       "model.prior=null", "train.kl_weight=1.0"],
        "after: the recipe (upsample + logistic_mixture + flow prior)": []}


def write_folder(folder: Path, pictures: int, seed: int = 0) -> Path:
    """`pictures` coloured-shape pictures at 64x64 RGB with their captions, as a user would have them."""
    data = get_registry().build("dataset", "shapes_captions", {"image_size": 64, "n_train": pictures,
                                                               "n_test": 1, "seed": seed, "max_shapes": 2})
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metadata.jsonl").open("w") as meta:
        for i in range(len(data.train)):
            name = f"{i:05d}.png"
            Image.fromarray(data.train.images[i].permute(1, 2, 0).numpy()).save(folder / name)
            meta.write(json.dumps({"file_name": name, "text": data.train.conditions[i][0]}) + "\n")
    return folder


def measure(run: Path, n: int) -> dict[str, float]:
    trained = load_run(run)
    data = build_dataset(trained.recipe, get_registry())
    test = data.test.head(n)
    raw = [caps[0] for caps in test.conditions]
    samples = trained.model.sample(raw, generator=torch.Generator().manual_seed(0))
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in last if r["kind"] == "eval"][-1]
    return {"checkerboard": checkerboard(samples, test.images), **evaluated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=400)
    parser.add_argument("--held-out", type=int, default=200, help="test pictures (the judge's figures are shares of them)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--judge-epochs", type=int, default=40)
    parser.add_argument("--way", choices=["both", "before", "after"], default="both")
    parser.add_argument("--out", type=Path, default=None, help="where the folder and runs go (default: a temp folder)")
    parser.add_argument("--tiny", action="store_true", help="64 pictures, 1 epoch: that it runs, not its figures")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a recipe override for every way, e.g. --set model.prior=flow")
    args = parser.parse_args()
    if args.tiny:
        args.pictures, args.held_out, args.epochs, args.judge_epochs = 64, 16, 1, 1
    out = args.out or Path(tempfile.mkdtemp(prefix="cvaekit-own-captions-"))
    folder = out / "pictures"
    write_folder(folder / "train", args.pictures, seed=0)
    write_folder(folder / "test", args.held_out, seed=1)
    common = [f"data.root={folder}", f"train.epochs={args.epochs}", f"train.checkpoint_every={args.epochs}",
              f"runs_dir={out / 'runs'}", f"eval.limit={args.held_out}",
              f"eval.metrics=[nelbo, {{name: caption_match, n: {args.held_out}, judge_epochs: {args.judge_epochs}}}]"]
    if args.tiny:
        common += ["model.encoder.channels=[8, 8, 8, 8]", "model.decoder.channels=[8, 8, 8, 8]", "model.decoder.hidden=32"]
    table = Table(title=f"own_captions on {args.pictures} captioned 64x64 RGB pictures ({args.held_out} held out), "
                        f"{args.epochs} epochs, the judge {args.judge_epochs}")
    for column in ("way", "checkerboard (x real)", "bits/dim", "caption_match", "real", "share", "recon", "shuffled", "s"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for way, overrides in WAYS.items():
        if args.way != "both" and not way.startswith(args.way):
            continue
        start = time.perf_counter()
        run = train(load_recipe(RECIPE, [*common, *overrides, *args.overrides]), progress=not args.tiny)
        m = measure(run, args.held_out)
        bpd = f"{m['nelbo_bpd']:.3f}" if "nelbo_bpd" in m else "-"
        table.add_row(way, f"{m['checkerboard']:.2f}", bpd, f"{m['caption_match']:.3f}", f"{m['caption_match_real']:.3f}",
                      f"{m['caption_match_share']:.2f}", f"{m['caption_match_recon']:.3f}", f"{m['caption_match_shuffled']:.3f}",
                      f"{time.perf_counter() - start:.0f}")
        print(f"{way}: {run}/samples/", flush=True)
    Console(width=140).print(table)  # every header whole, in a pipe too


if __name__ == "__main__":
    main()
