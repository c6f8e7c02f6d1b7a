"""Going back before a divergence (`train.rewinds`) instead of stopping there.

A run whose loss became NaN or blew up returns to the weights, optimizer and loop state of
the epoch end before the last, and goes on with another batch order. Large runs meet loss
spikes so: PaLM (Chowdhery et al. 2022) restarted about 100 steps before a spike and skipped
the batches in between. It helps where the break hangs on the path rather than the recipe
(the same seed that broke at epoch 18 on one CPU trained through on another; docs/
performance.md, 0.20); a recipe that breaks on every order (too high a rate) breaks again,
and stops once its rewinds are spent.

The two epoch ends live on disk as hard links beside last.pt (`RunDir.epoch_end`,
`RunDir.rewind_point`), so a resumed run rewinds exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from cvaekit.recipe import Recipe
from cvaekit.runtime.device import console
from cvaekit.store.checkpoint import keep_copy, read_training_checkpoint
from cvaekit.store.runs import RunDir
from cvaekit.training.divergence import TrainingDiverged
from cvaekit.training.resuming import restore_training
from cvaekit.training.state import LoopState


class Rewinder:
    """Keeps the epoch ends a diverged run goes back to, and takes it back there."""

    def __init__(self, recipe: Recipe, run: RunDir, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 average: AveragedModel | None, train_size: int, main: bool):
        self.allowed, self.part_lr, self.run, self.main = recipe.train.rewinds, recipe.train.part_lr, run, main
        self.model, self.optimizer, self.average, self.train_size = model, optimizer, average, train_size

    def epoch_saved(self) -> None:
        """After last.pt was written at an epoch's end: the previous end becomes the rewind
        point and this one the next (hard links, no copy of the bytes)."""
        if not self.allowed or not self.main:
            return
        if self.run.epoch_end.is_file():
            keep_copy(self.run.epoch_end, self.run.rewind_point)
        keep_copy(self.run.last, self.run.epoch_end)

    def rewind(self, error: TrainingDiverged, state: LoopState) -> dict[str, Any]:
        """Take the run back to the rewind point (the end before the last; the last where only
        one epoch ended), with its batch order drawn anew; its record for metrics.jsonl. Raises
        `error` when the run has no rewinds left or no epoch end to go back to."""
        point = self.run.rewind_point if self.run.rewind_point.is_file() else self.run.epoch_end
        if state.rewinds >= self.allowed or not point.is_file():
            raise self._refused(error, state, point.is_file())
        done = state.rewinds + 1
        restore_training(read_training_checkpoint(point), self.model, self.optimizer, state, self.average,
                         self.part_lr)
        state.rewinds = done
        for _ in range(done):  # another order from here than each earlier pass took
            torch.randperm(self.train_size, generator=state.order)
        if self.main:
            if point != self.run.rewind_point:
                keep_copy(point, self.run.rewind_point)
            keep_copy(point, self.run.epoch_end)  # the next epoch end rotates from here
            self.run.truncate_records(state.epoch)
            console.print(f"{error.what}: going back to the end of epoch {state.epoch} (step {state.step}) with "
                          f"another batch order, rewind {done} of {self.allowed} ('train.rewinds').",
                          markup=False, highlight=False, soft_wrap=True)
        return {"kind": "rewind", "epoch": state.epoch, "step": state.step, "rewinds": done, "reason": error.what}

    def _refused(self, error: TrainingDiverged, state: LoopState, has_point: bool) -> TrainingDiverged:
        """The divergence as it stops the run, saying why it did not go back."""
        if not self.allowed:
            return error
        why = (f"It had already gone back {state.rewinds} time{'s' * (state.rewinds != 1)}, all that "
               f"'train.rewinds' ({self.allowed}) allows." if has_point else
               "No epoch had ended yet to go back to ('train.rewinds').")
        return TrainingDiverged(f"{error} {why}")

    def finished(self) -> None:
        """Training ended: the epoch ends kept to go back to are no longer needed."""
        if self.main:
            self.run.epoch_end.unlink(missing_ok=True)
            self.run.rewind_point.unlink(missing_ok=True)
