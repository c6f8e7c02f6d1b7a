"""How far a labelled run's samples can go on `cond_accuracy`: the judge per class on real
test images, on the same images slightly blurred, on the run's reconstructions of them,
and on the run's samples (drawn exactly as the metric draws them).

A sample cannot be judged better than the decoder can draw, and reconstructions show
what it draws with the most information z can carry. The blurred columns show how much of
the judge's accuracy rests on fine detail that a VAE's mean image smooths away.

    python benchmarks/judge_ceiling.py runs/fashion_conv-20261124-043213
    python benchmarks/judge_ceiling.py RUN --checkpoint epoch-0010.pt --per-class 500
"""

from __future__ import annotations

import argparse

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)
import torch
import torchvision.transforms.functional as TF
from rich.console import Console
from rich.table import Table

from cvaekit.components.metrics.cond_accuracy import ConditionalAccuracy
from cvaekit.components.metrics.judge import predictions
from cvaekit.evaluation import EvalContext
from cvaekit.plugins import get_registry
from cvaekit.runs import load_run

BLURS = (0.5, 0.7, 1.0)  # Gaussian sigma in pixels


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="A run folder of a labelled data set (such as fashion_mnist).")
    p.add_argument("--checkpoint", default=None, help="Checkpoint file in the run (default: the last).")
    p.add_argument("--per-class", type=int, default=500, help="Samples per class (the metric's per_class).")
    p.add_argument("--judge-epochs", type=int, default=2, help="The metric's judge_epochs.")
    p.add_argument("--judge-seed", type=int, default=0, help="The metric's judge_seed.")
    return p.parse_args()


@torch.no_grad()
def reconstructions(ctx: EvalContext) -> torch.Tensor:
    return torch.cat([ctx.model.reconstruct(images, raw).cpu() for images, raw in ctx.batches()])


def main() -> None:
    args = parse_args()
    trained = load_run(args.run, args.checkpoint)
    data = get_registry().build("dataset", trained.recipe.data.name, trained.recipe.data.params)
    ctx = EvalContext(trained.model, data, data.test, seed=trained.recipe.seed)
    metric = ConditionalAccuracy(per_class=args.per_class, judge_epochs=args.judge_epochs,
                                judge_seed=args.judge_seed)
    judge = metric.judge(ctx)
    real, labels = data.test.batch(torch.arange(len(data.test)))
    columns = {"real": (real, labels)}
    columns |= {f"blur {s}": (TF.gaussian_blur(real, 5, s), labels) for s in BLURS}
    columns["recon"] = (reconstructions(ctx), labels)
    columns["samples"] = metric.samples(ctx)
    correct = {name: (predictions(judge, images) == y, y) for name, (images, y) in columns.items()}

    table = Table(title=f"Judge accuracy, {trained.run.path.name} epoch {trained.epoch}")
    table.add_column("class")
    for name in correct:
        table.add_column(name, justify="right")
    for c, label in enumerate(data.classes):
        table.add_row(label, *(f"{hit[y == c].float().mean():.3f}" for hit, y in correct.values()))
    table.add_row("all", *(f"{hit.float().mean():.3f}" for hit, _ in correct.values()), style="bold")
    Console().print(table)


if __name__ == "__main__":
    main()
