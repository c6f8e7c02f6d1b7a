"""What a tracker (a `logger` component) is told about a run, and the recipe as its parameters.

The training loop calls, on process 0 only: `start` once, `epoch` after every epoch (the train
figures), `checkpoint` at every kept checkpoint (the metrics and the sample and reconstruction
grids), and `close` when training ends, however it ends. A logger overrides what it records;
the rest do nothing. The engine guards every call: a logger that raises is named in one warning
and left out for the rest of the run, so a tracking server gone down never stops training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Logger:
    """The base a logger may extend (any object with these four methods will do)."""

    def start(self, run: Path, params: dict[str, Any]) -> None:
        """The run folder, and the resolved recipe flattened to `section.key` parameters."""

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        """After each epoch: `train/loss`, `train/recon`, `train/kl`, `train/images_per_s`, ..."""

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        """At each kept checkpoint: `eval/<metric>` figures and PNGs by name (samples, reconstructions)."""

    def close(self, status: str, checkpoint: Path | None) -> None:
        """`finished`, `failed`, `interrupted` (Ctrl-C) or `stopped` (by the tuner: a pruned trial),
        and the last checkpoint (None if none was saved)."""


def flatten(recipe: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 0.001}, 'log': ['csv']} -> {'train.lr': 0.001, 'log.0': 'csv'}: what trackers
    take as parameters (flat, scalar values), so runs compare by any recipe key."""
    out: dict[str, Any] = {}
    items = recipe.items() if isinstance(recipe, dict) else enumerate(recipe)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list, tuple)) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = [] if isinstance(value, (list, tuple)) else ({} if isinstance(value, dict) else value)
    return out
