"""What changes over training as a function of where it stands: the learning rate of a step,
and the order of an epoch. Functions of the step and the seed alone, so a resumed run
continues on the same curve with nothing more saved."""

from __future__ import annotations

import math

import torch


def epoch_order(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An epoch: image indices in their shuffled order, and one uniform draw per index that picks
    its caption. Every process draws the same (the same seed) and takes its share of both
    (`Distributed.shard`), so the shares of the processes are disjoint."""
    return torch.randperm(n, generator=generator), torch.rand(n, generator=generator)


def kl_weight(base: float, schedule: str, step: int, total: int, warmup: int = 1000, cycles: int = 4,
              ratio: float = 0.5) -> float:
    """The KL weight of optimizer step `step` (0-based) of `total`: `base` throughout
    (constant), rising from 0 to `base` over the first `warmup` steps (linear), or that rise
    over the first `ratio` of each of `cycles` equal cycles (cyclical, Fu et al. 2019)."""
    if schedule == "linear":
        return base * min(1.0, step / warmup)
    if schedule == "cyclical":
        period = max(total / cycles, 1.0)
        within = (step % period) / period
        return base * min(1.0, within / min(ratio, 1.0))
    return base


def learning_rate(base: float, schedule: str, step: int, total: int, cooldown: float = 0.2) -> float:
    """The learning rate of optimizer step `step` (0-based) of `total`. `cooldown` holds the
    rate, then lowers it over the last share of the steps: a short run keeps its high rate
    for most of its steps and still ends at a low one."""
    step = min(step, total)
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * step / total))
    if schedule == "cooldown":
        start = total * (1 - min(cooldown, 1.0))
        return base if step < start else base * (total - step) / (total - start)
    return base
