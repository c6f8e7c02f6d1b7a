"""What `train.ema` costs the loop: a recipe trained with and without the weights' average,
taking turns round after round so both meet the same load; the last epoch's images/s of each,
their medians and the ratio.

    python benchmarks/ema_cost.py                                   # the study's MLP, 5 rounds
    python benchmarks/ema_cost.py --recipe recipes/shapes_hier.yaml --images 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from cvaekit.recipe import read_yaml
from cvaekit.training import train

ROOT = Path(__file__).resolve().parents[1]


def images_per_s(recipe: dict, ema: float | None, epochs: int, images: int) -> float:
    """The last epoch's images/s of one training (its run folder in a temporary place)."""
    recipe = json.loads(json.dumps(recipe))
    recipe["train"].update(epochs=epochs, limit=images, checkpoint_every=epochs + 1, ema=ema, processes=1)
    recipe["eval"].update(metrics=["nelbo"], limit=64)
    recipe["fit_prior"] = None
    with tempfile.TemporaryDirectory() as runs:
        recipe["runs_dir"] = runs
        run = train(recipe, progress=False)
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["kind"] == "train"][-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "fashion_onehot.yaml")
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training; the last is timed")
    parser.add_argument("--images", type=int, default=30000, help="the first N training images")
    args = parser.parse_args()
    recipe = read_yaml(args.recipe)
    seen: dict[str, list[float]] = {"without": [], f"ema {args.decay:g}": []}
    for _ in range(args.rounds):
        for name, decay in zip(seen, (None, args.decay)):
            seen[name].append(images_per_s(recipe, decay, args.epochs, args.images))
    medians = {name: statistics.median(values) for name, values in seen.items()}
    print(f"{args.recipe.name}, {args.images} images, {args.rounds} rounds taking turns (images/s of the last epoch)")
    for name, values in seen.items():
        print(f"{name:>10}: median {medians[name]:,.0f}  ({', '.join(f'{v:,.0f}' for v in values)})")
    without, with_ema = medians.values()
    print(f"ratio with/without: {with_ema / without:.3f}")


if __name__ == "__main__":
    main()
