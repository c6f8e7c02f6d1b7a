"""Classifier-free guidance for a CVAE (Ho and Salimans 2022): the decoder's output moved away
from what it draws without text, toward what the text adds.

A model trained with `train.cond_dropout` has learned p(x | z, c) and p(x | z, empty) in one
decoder. With z drawn from the prior given the caption, the guided output is
out(empty) + scale * (out(c) - out(empty)) in the decoder's output space (a likelihood's
parameters, as autoregressive image models guide their logits): scale 1 is the model itself,
above 1 weighs the text up, 0 draws without it.
"""

from __future__ import annotations

import math

import torch

from cvaekit.core.condition import Condition
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.errors import CvaekitError


def check_guidance(scale) -> float:
    """`scale` as a float, or a CvaekitError naming what it must be."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 <= value < math.inf or isinstance(scale, bool):
        raise CvaekitError(f"The guidance scale must be a finite number, 0 or more (1: the model as trained, "
                           f"above 1 weighs the text up; it needs a run trained with train.cond_dropout); got {scale!r}.")
    return value


def guided(scale: float) -> dict[str, float]:
    """The keyword a metric passes to `model.sample`: none at scale 1, so that a model (or a
    test's stand-in) whose `sample` predates guidance is sampled as before."""
    return {} if scale == 1 else {"guidance": scale}


def guidance_tag(scale: float) -> str:
    """The suffix of a metric's columns for samples at this scale: '' at 1, '_g2' at 2."""
    return "" if scale == 1 else f"_g{scale:g}"


def check_guided_run(cond_dropout: float, scale: float) -> None:
    """A guidance scale other than 1 needs a model that learned to draw without text."""
    if scale != 1 and cond_dropout == 0:
        raise CvaekitError(f"Guidance {scale:g} needs a run trained with train.cond_dropout (e.g. 0.1), which "
                           "teaches the model to draw without text too; this run was trained without it "
                           "(train.cond_dropout: 0). Leave the guidance at 1, or train again with "
                           "--set train.cond_dropout=0.1.")


def guided_output(model, cond: Condition, draws: list[GroupDraw], scale: float) -> torch.Tensor:
    """The decoder's output for latents drawn from the prior given `cond`, guided by `scale`:
    every group's z is drawn once, under the caption, and decoded again without it."""
    drawn = model.prior_sample(cond, draws)
    if scale == 1:
        return drawn.out
    held = [GroupDraw(z=group.z) for group in drawn.groups]
    plain = model.prior_sample(cond.empty(), held).out
    return torch.lerp(plain, drawn.out, scale)
