"""What a save of checkpoints/last.pt costs, to choose `train.save_every_steps`: milliseconds
per save (the weights, Adam's state and the loop's, written whole: a temporary file, then a
rename), beside milliseconds per training step, for the study's MLP
(recipes/fashion_onehot.yaml) and a convolutional recipe (recipes/fashion_conv.yaml).

    python benchmarks/save_cost.py                  # into a temporary folder on this disk
    python benchmarks/save_cost.py --dir /scratch   # onto another disk
    python benchmarks/save_cost.py --saves 5        # fewer saves (a quick look)

A save every N steps costs (ms per save) / (N x ms per step) of the training time; it is
written by process 0 only, while the others go on to the next step and wait for it there.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cvaekit.assembly import build_dataset, build_model
from cvaekit.core.objectives import Objective
from cvaekit.plugins.loading import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.store.checkpoint import write_training_checkpoint
from cvaekit.training.state import LoopState

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["fashion_onehot", "fashion_conv"]


def measure(name: str, folder: Path, saves: int, steps: int) -> dict:
    registry = get_registry()
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml", registry=registry)
    data = build_dataset(recipe, registry)
    model = build_model(recipe.model, data.info(), registry)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.train.lr, fused=True)
    gen = torch.Generator().manual_seed(0)
    images, raw = data.train.batch(torch.arange(recipe.train.batch_size), generator=gen)
    objective = Objective.from_train(recipe.train, recipe.train.kl_weight)
    step_ms = []
    for i in range(steps + 2):  # two to warm up
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(images, raw, objective)["loss"].backward()
        optimizer.step()
        if i >= 2:
            step_ms.append(1000 * (time.perf_counter() - start))
    state = LoopState(gen, epoch=1, step=steps)
    path, save_ms = folder / f"{name}.pt", []
    for _ in range(saves + 1):  # one to warm up
        start = time.perf_counter()
        write_training_checkpoint(path, model=model.state_dict(), optimizer=optimizer.state_dict(),
                                  data_info=model.data_info.to_dict(), recipe=recipe.to_dict(), **state.state_dict())
        save_ms.append(1000 * (time.perf_counter() - start))
    return {"recipe": name, "params": sum(p.numel() for p in model.parameters()),
            "mb": path.stat().st_size / 2**20, "save_ms": statistics.median(save_ms[1:]),
            "step_ms": statistics.median(step_ms), "batch": recipe.train.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: a temporary folder).")
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = [measure(name, Path(tmp), args.saves, args.steps) for name in args.recipes]
    print(f"{'recipe':<16}{'parameters':>12}{'last.pt MB':>12}{'ms/save':>10}{'ms/step':>10}"
          f"{'batch':>7}{'every 100 steps':>17}")
    for r in rows:
        share = r["save_ms"] / (100 * r["step_ms"])
        print(f"{r['recipe']:<16}{r['params']:>12,}{r['mb']:>12.1f}{r['save_ms']:>10.1f}{r['step_ms']:>10.1f}"
              f"{r['batch']:>7}{share:>16.2%}")


if __name__ == "__main__":
    main()
