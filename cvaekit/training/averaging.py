"""The weights' exponential moving average (`train.ema`), the model a run is used with.

Late in training the weights jitter around a minimum from step to step; their average sits
nearer its centre and gives steadier samples than any one step's weights (Polyak averaging;
VDVAE and NVAE sample from it). torch's AveragedModel keeps it: parameters averaged, buffers
copied as they are. The checkpoint holds it beside the trained weights (store/checkpoint.py),
so a resume continues it exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel


def warmed_decay(decay: float, averaged: int) -> float:
    """The decay of the update after `averaged` steps: `decay`, but at most (1 + n) / (10 + n)
    (TensorFlow's ExponentialMovingAverage with num_updates). A plain 0.999 still weighs the
    initial weights by half after 700 steps, and an average of weights that far apart is no
    model at all (measured: 2.5 bits/dim against 0.82 at 625 steps)."""
    return min(decay, (1 + averaged) / (10 + averaged))


def _ema_update(decay: float):
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, 1 - warmed_decay(decay, int(n_averaged)))

    return update


def weight_average(model: torch.nn.Module, decay: float | None,
                   checkpoint: dict[str, Any] | None = None) -> AveragedModel | None:
    """The average of `model`'s weights with `decay` per step (None: no average), continued
    from the checkpoint's when it holds one; otherwise it starts at the next step's weights."""
    if decay is None:
        return None
    average = AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=False)
    average.requires_grad_(False)
    if checkpoint is not None:
        load_average(average, checkpoint)
    return average


def load_average(average: AveragedModel, checkpoint: dict[str, Any]) -> None:
    """Continue the checkpoint's average, where it holds one (a resume, a rewind)."""
    if "ema" in checkpoint:
        average.module.load_state_dict(checkpoint["ema"])
        average.n_averaged.fill_(checkpoint["ema_updates"])


def average_state(average: AveragedModel | None) -> dict[str, Any]:
    """What a training checkpoint saves of the average: its weights and how many steps it has
    taken in (nothing without one)."""
    if average is None:
        return {}
    return {"ema": average.module.state_dict(), "ema_updates": int(average.n_averaged)}
