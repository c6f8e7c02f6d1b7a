"""Text to images from a trained run: a labelled grid with one row per text, and a strip
that walks from one text to another (`cvaekit generate`, `--interpolate`)."""

from __future__ import annotations

import os
from pathlib import Path

from cvaekit.assembly import load_run
from cvaekit.core.guidance import check_guidance, check_guided_run
from cvaekit.core.prior import check_temperature
from cvaekit.core.sampling import (
    MAX_PER_TEXT,
    check_count,
    check_texts,
    sample_rows,
    walk_texts,
)
from cvaekit.evaluation.figures import labelled_grid
from cvaekit.plugins.registry import Registry


def generate(run: str | os.PathLike, texts: list[str], n: int = 8, out: str | os.PathLike = "samples.png",
             checkpoint: str | None = None, seed: int = 0, registry: Registry | None = None,
             temperature: float | list[float] = 1.0, text_encoder: str | None = None, fix_top: int = 0,
             guidance: float = 1.0) -> Path:
    """Write a grid of `n` samples for each text from a trained run (a run folder, an
    exported folder or a hub id); return its path. `n` is 1 to `MAX_PER_TEXT`; an empty or blank text
    is an error (`check_texts`: the page's rule too). `temperature`: one for every latent
    group, or a list, one per group from the top (a hierarchical run); `fix_top` holds that many
    top groups at one draw per text while the lower ones vary from image to image; `guidance`
    above 1 weighs the text up, for a run trained with `train.cond_dropout`."""
    n = check_count(n, most=MAX_PER_TEXT)  # before the run is loaded
    check_temperatures(temperature)  # before the run is loaded, and before any prior sees it
    guidance = check_guidance(guidance)
    trained = load_run(run, checkpoint, registry, text_encoder=text_encoder)
    check_guided_run(trained.recipe.train.cond_dropout, guidance)
    texts = check_texts(trained.model, texts)
    rows = sample_rows(trained.model, texts, n, seed, temperature, fix_top, guidance)
    return labelled_grid(rows, texts, out)


def check_temperatures(temperature: float | list[float]) -> None:
    """Each temperature a number, 0 or more (how many the run takes is checked once it is loaded)."""
    for value in temperature if isinstance(temperature, (list, tuple)) else [temperature]:
        check_temperature(value)


def interpolate(run: str | os.PathLike, text_a: str, text_b: str, steps: int = 8,
                out: str | os.PathLike = "interpolation.png", checkpoint: str | None = None, seed: int = 0,
                registry: Registry | None = None, temperature: float | list[float] = 1.0,
                text_encoder: str | None = None) -> Path:
    """Write the strip of `walk_texts` from a trained run as a labelled PNG; return its path."""
    check_temperatures(temperature)
    trained = load_run(run, checkpoint, registry, text_encoder=text_encoder)
    strip = walk_texts(trained.model, text_a, text_b, steps, seed, temperature)
    return labelled_grid([strip], [f"{text_a} -> {text_b}"], out)
