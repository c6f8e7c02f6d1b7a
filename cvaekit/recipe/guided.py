"""The one rule that ties a recipe's metrics to its training: guided samples need a model that
learned to draw without text."""

from __future__ import annotations

from typing import Any

from cvaekit.errors import RecipeError


def guided_metrics_trained(specs: list[tuple[str, dict[str, Any]]], cond_dropout: float, where: str) -> None:
    """A metric asked to sample with guidance (its `guidance` parameter other than 1) needs a run
    trained with `train.cond_dropout`: the model must have learned to draw without text."""
    for i, (name, params) in enumerate(specs):
        scale = params.get("guidance", 1)
        if cond_dropout == 0 and isinstance(scale, (int, float)) and scale != 1:
            raise RecipeError(f"'{where}.{i}' ({name}) samples with guidance {scale:g}, which needs a model "
                              f"trained with train.cond_dropout (e.g. 0.1: it learns to draw without text too); "
                              f"train.cond_dropout is 0. Set it, or leave that metric's guidance at 1.")
