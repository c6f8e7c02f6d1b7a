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
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def weight_average(model: torch.nn.Module, decay: float | None,
                   checkpoint: dict[str, Any] | None = None) -> AveragedModel | None:
    """The average of `model`'s weights with `decay` per step (None: no average), continued
    from the checkpoint's when it holds one; otherwise it starts at the next step's weights."""
    if decay is None:
        return None
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    average.requires_grad_(False)
    if checkpoint is not None and "ema" in checkpoint:
        average.module.load_state_dict(checkpoint["ema"])
        average.n_averaged.fill_(checkpoint["ema_updates"])
    return average


def average_state(average: AveragedModel | None) -> dict[str, Any]:
    """What a training checkpoint saves of the average: its weights and how many steps it has
    taken in (nothing without one)."""
    if average is None:
        return {}
    return {"ema": average.module.state_dict(), "ema_updates": int(average.n_averaged)}
