"""Text to images: words or captions -> a labelled grid, one row per text."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .figures import labelled_grid
from .model import CVAE
from .registry import Registry
from .runs import load_run


@torch.no_grad()
def sample_rows(model: CVAE, texts: list[str], n: int, seed: int = 0,
                temperature: float = 1.0) -> list[torch.Tensor]:
    """`n` images per text. Texts are parsed by the model's conditioner first, so an unknown
    word fails before anything is generated. `temperature` below 1 trades variety for more
    typical images (see `cvaekit.prior.sample_latent`)."""
    raw = model.conditioner.parse(list(texts))
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    rows = []
    for i in range(len(texts)):
        one = raw[i:i + 1]
        batch = one.repeat(n) if isinstance(one, torch.Tensor) else list(one) * n
        rows.append(model.sample(batch, generator=gen, temperature=temperature).cpu())
    model.train(was_training)
    return rows


def generate(run: str | os.PathLike, texts: list[str], n: int = 8, out: str | os.PathLike = "samples.png",
             checkpoint: str | None = None, seed: int = 0, registry: Registry | None = None,
             temperature: float = 1.0) -> Path:
    """Write a grid of `n` samples for each text from a trained run; return its path."""
    trained = load_run(run, checkpoint, registry)
    rows = sample_rows(trained.model, texts, n, seed, temperature)
    return labelled_grid(rows, list(texts), out)
