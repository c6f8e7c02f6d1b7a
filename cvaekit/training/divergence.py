"""When training stops because it went wrong: a loss that became infinite, NaN or blew up,
or steps skipped (`train.skip_grad_factor`) so many times in a row that the weights no longer
move. Each stop names its step, what the run keeps, and the recipe keys that help."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from cvaekit.errors import CvaekitError
from cvaekit.recipe import Recipe
from cvaekit.training.state import LoopState

SKIP_STUCK = 100  # steps skipped in a row after which a run stops: its weights no longer move


class TrainingDiverged(CvaekitError):
    """The loss became infinite, NaN or blew up, or every step was skipped for `SKIP_STUCK`
    steps; training stopped at that step. `what` says what happened where, without the advice."""

    def __init__(self, message: str, what: str | None = None):
        super().__init__(message)
        self.what = what or message


def _kept(last: Path, what: str) -> str:
    """What the stopped run keeps: `what` (about `last`) where it was saved."""
    return what if last.is_file() else "Nothing had been saved yet."


def diverged(recipe: Recipe, state: LoopState, last: Path, epoch: int, step: int, value: float) -> TrainingDiverged:
    """The error for a loss of `value` at `step`: not finite, or blown up (`train.blowup_factor`)."""
    cfg = recipe.train
    clip = f"lower 'train.grad_clip' (now {cfg.grad_clip:g})" if cfg.grad_clip else "set 'train.grad_clip' (e.g. 1.0)"
    blown = (f", more than {cfg.blowup_factor:g} times the lowest epoch mean ({state.lowest_loss:.6g}) "
             f"above it ('train.blowup_factor')" if math.isfinite(value) else "")
    kept = _kept(last, f"The last good checkpoint stays '{last}'.")
    what = f"The loss became {value:.6g} at epoch {epoch}, step {step}{blown}"
    return TrainingDiverged(f"{what}: training diverged and stopped there. {kept} Lower 'train.lr' (now {cfg.lr:g}) "
                            f"or {clip}.", what)


def clip_or_skip(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: LoopState, recipe: Recipe,
                 last: Path) -> None:
    """Between backward and the optimizer's step: clip the gradients (`train.grad_clip`), or
    drop them when their norm is too steep (`train.skip_grad_factor`; the step still counts).
    A run whose last `SKIP_STUCK` steps were all skipped has stopped moving: it stops here."""
    cfg = recipe.train
    if not cfg.skip_grad_factor:
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        return
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf).item()  # before clipping
    if not state.too_steep(norm, cfg.skip_grad_factor):
        return
    optimizer.zero_grad(set_to_none=True)
    if state.skipped_in_row >= SKIP_STUCK:
        first, step = state.step + 2 - SKIP_STUCK, state.step + 1
        level = "none taken yet" if state.grad_level is None else f"{state.grad_level:.4g}"  # NaN norms from the start
        held = _kept(last, f"'{last}' holds the weights of step {first - 1} (the epoch losses in metrics.jsonl say "
                           f"whether they are worth keeping).")  # good or not: that step may be what broke them
        what = f"Every step from {first} to {step} (epoch {state.epoch + 1}) was skipped"
        raise TrainingDiverged(
            f"{what}: their gradient norms "
            f"({norm:.4g} at the last) stayed above {cfg.skip_grad_factor:g} times the running norm of the steps "
            f"taken ({level}; 'train.skip_grad_factor'), or were not finite, so the weights have not moved since step "
            f"{first - 1} and training stopped. {held} Lower 'train.lr' (now {cfg.lr:g}); if the "
            f"norms grew in a healthy run, raise 'train.skip_grad_factor'.", what)
