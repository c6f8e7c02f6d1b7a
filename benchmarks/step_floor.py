"""A recipe's training step against the machine's floor: its FLOPs, its GFLOP/s, and what one
core (or --threads) does on a large matrix product, side by side in one process.

    python benchmarks/step_floor.py                                   # recipes/shapes_hier.yaml
    python benchmarks/step_floor.py --recipe recipes/fashion_hier.yaml --threads 2

When the step already runs near the matrix product's rate, no loop or kernel change can make
the recipe much faster: only less arithmetic (a smaller model) or a faster machine can.
The model is the recipe's (`cvaekit.assembly.build_model`, its seed), trained in plain PyTorch
on the recipe's batch size (forward, backward, fused Adam), captions given as text.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from loop_overhead import bare_parts  # the bare step's parts, built as loop_overhead.py builds them
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]


def matmul_rate(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of a square float32 matrix product: the rate this core's BLAS reaches."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def step_figures(recipe_path: Path, steps: int) -> tuple[float, float, dict[str, float]]:
    """GFLOP of one training step, its median seconds over `steps`, and the FLOPs by operator."""
    recipe, data, model, optimizer = bare_parts(recipe_path)
    index = torch.arange(recipe.train.batch_size)
    images, raw = data.train.batch(index, caption="first")

    def step() -> None:
        loss = model(images, raw)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm: allocations, the first-call paths
    with FlopCounterMode(display=False) as counter:
        step()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    by_operator = {str(op): flops / 1e9 for op, flops in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops() / 1e9, statistics.median(seconds), by_operator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "shapes_hier.yaml")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as cvaekit's loop does
    gflop, seconds, by_operator = step_figures(args.recipe, args.steps)
    blas = matmul_rate()
    print(f"{args.recipe.name}, {args.threads} thread(s), the recipe's batch")
    print("| | GFLOP a step | step s | GFLOP/s | share of the matrix product's rate |")
    print("|---|---|---|---|---|")
    print(f"| the training step | {gflop:.3f} | {seconds:.4f} | {gflop / seconds:.1f} | {gflop / seconds / blas:.0%} |")
    print(f"| 1024x1024 matrix product | | | {blas:.1f} | 100% |")
    print("FLOPs by operator (GFLOP): " + ", ".join(f"{op} {v:.2f}" for op, v in
                                                   sorted(by_operator.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
