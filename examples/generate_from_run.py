"""Sample images for texts from a trained run, with the Python API.

    python examples/generate_from_run.py runs/shapes_from_python-<stamp> "a red circle" "a small blue square"
"""

from __future__ import annotations

import argparse

from cvaekit.errors import CvaekitError
from cvaekit.figures import labelled_grid
from cvaekit.generate import sample_rows
from cvaekit.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder (runs/<name>-<stamp>)")
    parser.add_argument("texts", nargs="+", help="captions or label words, one grid row each")
    parser.add_argument("-n", type=int, default=8, help="images per text")
    parser.add_argument("-o", "--output", default="samples.png")
    parser.add_argument("--checkpoint", default=None, help="'last' (default) or an epoch")
    args = parser.parse_args()

    trained = load_run(args.run, args.checkpoint)  # the recipe and model; no data set needed
    print(f"{trained.recipe.name}: epoch {trained.epoch} from {trained.checkpoint}")
    try:
        rows = sample_rows(trained.model, args.texts, args.n, seed=0)  # [n, C, H, W] per text
    except CvaekitError as exc:  # e.g. a word outside a label model's classes
        raise SystemExit(f"error: {exc}") from None
    print(labelled_grid(rows, args.texts, args.output))


if __name__ == "__main__":
    main()
