"""Which run a start continues, and what a stopped one says about continuing it.

The rule (docs/getting-started.md, "Runs that restart themselves"):

* `cvaekit run RECIPE --run-name NAME` trains in `<runs_dir>/NAME`. When that folder holds a
  checkpoint, the start continues it from there, as `--resume` would (same model, data and
  seed, or a clear error); when it holds none (new, or a crash came before the first save),
  the run starts there. The same command, typed again or rerun by a scheduler, continues.
* Under `torchrun --max-restarts K`, a group torchrun restarted (TORCHELASTIC_RESTART_COUNT
  above 0) continues the run its own job made (found by TORCHELASTIC_RUN_ID), named or not.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import Recipe, load_recipe
from cvaekit.runtime.device import console
from cvaekit.runtime.processes import launched
from cvaekit.store.checkpoint import read_training_checkpoint
from cvaekit.store.runs import RunDir
from cvaekit.training.averaging import load_average
from cvaekit.training.optimizer import restore_optimizer
from cvaekit.training.state import LoopState

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def run_folder(recipe: Recipe, run_name: str | None, resume: object = None) -> Path | None:
    """The folder this start trains in when it is not a new timestamped one: the named run's,
    or, in a group torchrun restarted, the one its job made; None otherwise."""
    if run_name is not None:
        if resume is not None:
            raise CvaekitError("Give --run-name NAME (start, or continue, the run of that name) or --resume RUN "
                               "(continue that run folder), not both.")
        if not NAME.fullmatch(run_name) or len(run_name) > 200:
            raise CvaekitError(f"--run-name '{run_name}' must be a folder name: letters, digits, '_', '-' and '.', "
                               f"not starting with '.' or '-' (e.g. coco-large-1).")
        folder = Path(recipe.runs_dir) / run_name
        if folder.exists() and not (folder / "recipe.yaml").is_file() and any(folder.iterdir()):
            raise CvaekitError(f"'{folder}' exists and is not a cvaekit run folder; give another --run-name.")
        return folder
    job, restarts = os.environ.get("TORCHELASTIC_RUN_ID"), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    if job is None or restarts == 0 or not Path(recipe.runs_dir).is_dir():
        return None
    made = [p for p in sorted(Path(recipe.runs_dir).glob(f"{recipe.name}-*")) if RunDir(p).launched_by(job)]
    return made[-1] if made else None


def restore_training(checkpoint: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     state: LoopState, average: AveragedModel | None, part_lr: dict[str, float]) -> None:
    """Put a training checkpoint back into the live run: weights, optimizer (regrouped where the
    recipe's `train.part_lr` differs from the one it was saved under), loop state, average."""
    model.load_state_dict(checkpoint["model"])
    saved_part_lr = checkpoint["recipe"]["train"].get("part_lr", {})  # none before 0.20
    restore_optimizer(optimizer, checkpoint["optimizer"], model, saved_part_lr, part_lr)
    state.load_state_dict(checkpoint)
    if average is not None:
        load_average(average, checkpoint)


def say_continuing(run: RunDir, state: dict) -> None:
    """What a start that continues a run by itself says (process 0), from its last checkpoint
    `state` (already read to resume from)."""
    if os.environ.get("RANK", "0") == "0":
        console.print(f"Continuing run '{run.path}' from its last checkpoint ({_where(state)}).",
                      markup=False, highlight=False, soft_wrap=True)


def check_resumable(recipe: Recipe, run: RunDir, registry: Registry, named: bool = False) -> None:
    if not run.last.is_file():
        raise CvaekitError(f"Run '{run.path}' has no checkpoint to resume from (checkpoints/last.pt).")
    saved = load_recipe(run.recipe_file, registry=registry).to_dict()
    new = recipe.to_dict()
    differ = [k for k in ("model", "data", "seed") if saved[k] != new[k]]
    if differ:
        fix = ("Give another --run-name to start a new run, or remove that folder." if named else
               "Resume without a recipe to use the run's own.")
        verb = "differs" if len(differ) == 1 else "differ"
        raise RecipeError(f"Cannot resume '{run.path}' with this recipe: its {' and '.join(differ)} "
                          f"{verb} from the run's. {fix}")


def _where(state: dict) -> str:
    """Where a training checkpoint stands: its epoch, or its step inside an epoch."""
    return f"epoch {state['epoch']}" if "position" not in state else (
        f"step {state['step']} (batch {state['position']['batches']} of epoch {state['position']['epoch']})")


def resume_text(run: RunDir, lead: str) -> str:
    if not run.last.is_file():
        return "Nothing had been saved yet, so the run folder was removed; start the run again."
    where = _where(read_training_checkpoint(run.last))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    command = f"torchrun --nproc_per_node {world} -m cvaekit" if world > 1 and not launched() else "cvaekit"
    return f"The last checkpoint ({where}) is intact. {lead}: {command} run --resume {run.path}"


def interrupted_text(run: RunDir) -> str:
    if not run.last.is_file():
        return ("Interrupted before anything was saved; the run folder was removed. "
                "Start the run again to train.")
    done = max((e for e, _ in run.checkpoints()), default=None)
    return (f"Interrupted. Everything saved stays in '{run.path}' (kept checkpoints up to epoch "
            f"{done or 'none'}). " + resume_text(run, "Continue with"))


def already_trained(run: RunDir, done: int, epochs: int, second_stage: bool = False) -> Path:
    """Resuming a run that has trained all its epochs trains nothing (it may still fit the
    recipe's prior); fewer epochs than it has is a mistake."""
    more = f"cvaekit run --resume {run.path} --set train.epochs={done + 10}"
    if done > epochs:
        raise RecipeError(f"Run '{run.path}' has already trained {done} epochs, more than "
                          f"'train.epochs' ({epochs}) and is left as it is. To train further: {more}")
    pending = second_stage and not run.fitted_prior(done).is_file()
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
        rest = "fitting the recipe's prior" if pending else "nothing to do"
        console.print(f"Run '{run.path}' has already trained all {done} epochs of its recipe; {rest}. "
                      f"To train further: {more}", markup=False, highlight=False)
    return run.path
