"""What a metric receives, and how a checkpoint is evaluated.

A metric component is a factory whose product is called as `metric(ctx)` and returns a
mapping of names to numbers; `ctx` is an `EvalContext`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cvaekit.core.data import DataSource, RawConditions, Split
from cvaekit.core.model import CVAE


@dataclass
class EvalContext:
    model: CVAE
    data: DataSource
    test: Split  # the (possibly limited) test split metrics judge on
    batch_size: int = 256
    seed: int = 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run's seed, so metrics repeat exactly."""
        return torch.Generator().manual_seed(self.seed + offset)

    def batches(self, split: Split | None = None, caption: str = "first") -> Iterator[tuple[torch.Tensor, RawConditions]]:
        """The split in order, as (images on the model's device, raw conditions)."""
        split = split if split is not None else self.test
        for start in range(0, len(split), self.batch_size):
            idx = torch.arange(start, min(start + self.batch_size, len(split)))
            images, raw = split.batch(idx, caption=caption)
            yield images.to(self.device), raw


def run_metrics(metrics: list[Any], ctx: EvalContext) -> dict[str, float]:
    """Every metric on `ctx`, with the model in eval mode and the global RNG left untouched."""
    results: dict[str, float] = {}
    was_training = ctx.model.training
    ctx.model.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(ctx.seed)
        for metric in metrics:
            results.update({k: float(v) for k, v in metric(ctx).items()})
    ctx.model.train(was_training)
    return results
