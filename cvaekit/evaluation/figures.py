"""Pictures a person would rather look at: labelled sample grids, reconstructions, curves."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

SHORT_LABEL = 18  # labels up to this long go left of their row, longer ones under it


def bare(ax) -> None:
    """An axes that shows only its image: no ticks, no frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def save(fig, path: Path, title: str | None) -> Path:
    """Title, tight layout, PNG at 100 dpi, and the figure closed."""
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def labelled_grid(rows: list[torch.Tensor], labels: list[str], path: str | os.PathLike,
                  title: str | None = None) -> Path:
    """One row of images ([n, C, H, W] in [0, 1]) per label; short labels at the left of
    their row, captions under it. Returns the PNG's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(r.shape[0] for r in rows)
    size = min(max(rows[0].shape[-1] / 40, 0.6), 1.6)  # inches per image
    below = any(len(label) > SHORT_LABEL for label in labels)
    if below:  # long captions wrap to their row's width instead of running off the figure
        labels = [textwrap.fill(label, max(20, int(n * size * 13))) for label in labels]
    lines = max(label.count("\n") + 1 for label in labels)
    row_h = size + (0.2 + 0.15 * lines if below else 0.05)
    left = 0.1 if below else 1.4
    fig, axes = plt.subplots(len(rows), 1, squeeze=False,
                             figsize=(left + n * size + 0.2, row_h * len(rows) + (0.5 if title else 0.1)))
    for ax, images, label in zip(axes[:, 0], rows, labels):
        grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=n, padding=2, pad_value=1.0)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if images.shape[1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        bare(ax)
        if below:
            ax.set_xlabel(label, fontsize=9)
        else:
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    return save(fig, path, title)


def reconstruction_grid(real: torch.Tensor, recon: torch.Tensor, path: str | os.PathLike,
                        title: str | None = None) -> Path:
    """Real images above their reconstructions."""
    return labelled_grid([real, recon], ["real", "reconstructed"], path, title)


def loss_curve(records: list[dict], path: str | os.PathLike) -> Path:
    """Train loss per epoch, and test negative ELBO at each checkpoint when measured."""
    path = Path(path)
    train = [(r["epoch"], r["loss"]) for r in records if r.get("kind") == "train"]
    test = [(r["epoch"], r["nelbo"]) for r in records if r.get("kind") == "eval" and "nelbo" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), marker="." if len(train) < 60 else None, label="train loss (neg. ELBO)")
    if test:
        ax.plot(*zip(*test), marker="o", label="test neg. ELBO")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path, None)
