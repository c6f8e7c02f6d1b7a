"""What `train.ema` costs the loop: a recipe trained with and without the weights' average,
taking turns round after round so both meet the same load; the last epoch's images/s of each,
their medians and the ratio.

    python benchmarks/ema_cost.py                                   # the study's MLP, 5 rounds
    python benchmarks/ema_cost.py --recipe recipes/fashion_conv.yaml --images 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from loop_overhead import worker_loop  # the loop's images/s, as the loop benchmark measures it

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "fashion_onehot.yaml")
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training; the last is timed")
    parser.add_argument("--images", type=int, default=30000, help="the first N training images")
    args = parser.parse_args()
    seen: dict[str, list[float]] = {"without": [], f"ema {args.decay:g}": []}
    for _ in range(args.rounds):
        for name, decay in zip(seen, (None, args.decay)):
            seen[name].append(worker_loop(args, [f"train.ema={decay}"] if decay else []))
    medians = {name: statistics.median(values) for name, values in seen.items()}
    print(f"{args.recipe.name}, {args.images} images, {args.rounds} rounds taking turns (images/s of the last epoch)")
    for name, values in seen.items():
        print(f"{name:>10}: median {medians[name]:,.0f}  ({', '.join(f'{v:,.0f}' for v in values)})")
    without, with_ema = medians.values()
    print(f"ratio with/without: {with_ema / without:.3f}")


if __name__ == "__main__":
    main()
