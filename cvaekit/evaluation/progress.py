"""The figures that show a run's progress: samples for fixed prompts and reconstructions of
fixed test images at every checkpoint (the study's Figures 3 and 6), and each checkpoint's own
sample and reconstruction grids."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from cvaekit.assembly import sample_prompts
from cvaekit.core.data import DataSource
from cvaekit.core.model import CVAE
from cvaekit.core.sampling import sample_rows
from cvaekit.evaluation.comparison import comparison_grid
from cvaekit.evaluation.figures import labelled_grid, reconstruction_grid
from cvaekit.recipe import Recipe
from cvaekit.store.checkpoint import read_training_checkpoint, weights_in_use
from cvaekit.store.runs import RunDir

RECONSTRUCTED = 8  # test images in the reconstructions figure, spread over the split


class ProgressFigures:
    """Collects, per checkpoint, one sample per prompt (same noise every time) and the
    reconstructions of the same test images, then draws both figures."""

    def __init__(self, data: DataSource, recipe: Recipe):
        self.recipe = recipe
        self.prompts = sample_prompts(recipe, data)
        shown = data.test.spread(RECONSTRUCTED)  # over the classes (or captions), not the first few
        self.real, self.real_raw = data.test.batch(shown, caption="first")
        self.samples: dict[int, torch.Tensor] = {}  # epoch -> one image per prompt
        self.recons: dict[int, torch.Tensor] = {}  # epoch -> reconstructions of `real`

    @torch.no_grad()
    def add(self, epoch: int, model: CVAE) -> None:
        rows = sample_rows(model, self.prompts, 1, seed=self.recipe.seed)
        self.samples[epoch] = torch.cat(rows)
        was_training = model.training
        model.eval()
        self.recons[epoch] = model.reconstruct(self.real, self.real_raw).cpu()
        model.train(was_training)

    def write(self, run: RunDir) -> list[Path]:
        if not self.samples:
            return []
        name, epochs = self.recipe.name, sorted(self.samples)
        samples = [(f"epoch {e}", self.samples[e]) for e in epochs]
        recons = [("real", self.real)] + [(f"epoch {e}", self.recons[e]) for e in epochs]
        return [comparison_grid(samples, self.prompts, run.samples_by_epoch,
                                title=f"{name}: samples by checkpoint"),
                comparison_grid(recons, None,
                                run.reconstructions_by_epoch,
                                title=f"{name}: reconstructions by checkpoint")]


def write_progress_figures(model: CVAE, data: DataSource, recipe: Recipe, run: RunDir,
                           figures: ProgressFigures | None = None) -> list[Path]:
    """Both figures over every kept checkpoint. Checkpoints `figures` already holds (the
    training loop adds each as it saves it) are not read again; any other is loaded into
    `model` in turn, and the model's own weights are put back after."""
    figures = figures or ProgressFigures(data, recipe)
    missing = [(e, p) for e, p in run.checkpoints() if e not in figures.samples]
    if not missing:
        return figures.write(run)
    own = copy.deepcopy(model.state_dict())  # tensors, and any extra state (a vocabulary)
    try:
        for epoch, path in missing:
            model.load_state_dict(weights_in_use(read_training_checkpoint(path)))
            figures.add(epoch, model)
    finally:
        model.load_state_dict(own)
    return figures.write(run)


def draw_figures(model: CVAE, recipe: Recipe, run: RunDir, epoch: int, figures: ProgressFigures) -> None:
    """The sample grid (fixed prompts and noise, so checkpoints compare) and reconstructions.
    `figures` has just added this epoch: its reconstructions are drawn, not computed again."""
    rows = sample_rows(model, figures.prompts, recipe.eval.samples_per_condition, seed=recipe.seed)
    labelled_grid(rows, figures.prompts, run.samples(epoch), title=f"{recipe.name}, epoch {epoch}")
    reconstruction_grid(figures.real, figures.recons[epoch], run.reconstructions(epoch), title=f"epoch {epoch}")
