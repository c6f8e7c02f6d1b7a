"""Figures that put models side by side: one row per checkpoint or setting, one column per
prompt (or per test image), so a row-to-row change is the model's change alone.

Used for samples by epoch (the study's Figure 3), reconstructions by epoch (its Figure 6)
and samples by setting (its Figure 4).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import torch

from cvaekit.evaluation.figures import bare, plt, save


def comparison_grid(rows: list[tuple[str, torch.Tensor]], columns: list[str] | None,
                    path: str | os.PathLike, title: str | None = None) -> Path:
    """`rows` of (label, images [P, C, H, W] in [0, 1]), all with P images; `columns` names
    each of the P columns (prompts), or None. Writes a PNG and returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_cols = max(images.shape[0] for _, images in rows)
    wrapped = [textwrap.fill(c, 16) for c in columns] if columns else None
    header = 0.12 * max((w.count("\n") + 1 for w in wrapped), default=0) + 0.1 if wrapped else 0.0
    cell = 1.0
    fig, axes = plt.subplots(len(rows), n_cols, squeeze=False,
                             figsize=(1.5 + n_cols * cell, header + len(rows) * cell + (0.4 if title else 0.1)))
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            bare(ax)
            if c < images.shape[0]:
                image = images[c].detach().float().cpu().clamp(0, 1)
                grey = image.shape[0] == 1
                ax.imshow(image[0] if grey else image.permute(1, 2, 0), cmap="gray" if grey else None,
                          vmin=0, vmax=1, interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and wrapped and c < len(wrapped):
                ax.set_title(wrapped[c], fontsize=7)
    return save(fig, path, title)
