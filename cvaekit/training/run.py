"""Training a recipe: build its parts, run the loop, keep what is saved when it stops, then the
recipe's second stage (fit_prior).

Runs on CPU or CUDA; under `torchrun`, or in the processes of `train.processes`, each process
trains on its share of every epoch (DistributedDataParallel) and process 0 writes the run folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel

from cvaekit.assembly import (
    build_conditioner,
    build_dataset,
    build_metrics,
    build_model,
)
from cvaekit.core.data import DataSource
from cvaekit.errors import CvaekitError, DiskFullError, RecipeError
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry, named_failures
from cvaekit.recipe import Recipe, dump_recipe, load_recipe
from cvaekit.runtime.device import Distributed, cpu_threads, flush_denormals, resolve_device
from cvaekit.runtime.interrupts import Interrupts
from cvaekit.runtime.processes import (
    check_processes,
    end_if_importing_main,
    launched,
    run_in_processes,
)
from cvaekit.store.checkpoint import is_disk_full, read_training_checkpoint
from cvaekit.store.runs import RunDir
from cvaekit.training.averaging import weight_average
from cvaekit.training.blame import parts_of
from cvaekit.training.fit_prior import second_stage
from cvaekit.training.divergence import TrainingDiverged
from cvaekit.training.loop import LoopParts, TrainingLoop
from cvaekit.training.memory import check_fits, estimate
from cvaekit.training.optimizer import build_optimizer
from cvaekit.training.resuming import (
    already_trained,
    check_resumable,
    interrupted_text,
    restore_training,
    resume_text,
    run_folder,
    say_continuing,
)
from cvaekit.training.state import LoopState
from cvaekit.training.trackers import Trackers

__all__ = ["TrainingDiverged", "TrainingInterrupted", "train"]


class TrainingInterrupted(CvaekitError):
    """Ctrl-C during training: what is saved stays saved, and the run can be resumed."""

    exit_code = 130


def train(recipe: Recipe | str | os.PathLike | dict | None, *, overrides: list[str] = (),
          resume: str | os.PathLike | None = None, run_name: str | None = None, registry: Registry | None = None,
          progress: bool = True, observers: list[Any] = ()) -> Path:
    """Train what `recipe` describes (a Recipe, a YAML path or a dict) and return its run folder.
    `observers` are told what loggers are (cvaekit.store.tracking.Logger), unguarded: what one
    raises stops the run (the tuner prunes a trial so). One process only.

    With `resume`, continue that run from its last checkpoint; the recipe defaults to the
    run's own, and its model and data must match it. With `run_name`, train in
    `<runs_dir>/<run_name>`, continuing it when it holds a checkpoint (resuming.py has the rule)."""
    end_if_importing_main()  # a script without `if __name__ == "__main__":`, in a process of train.processes
    registry = registry or get_registry()
    run = RunDir.open(resume) if resume is not None else None
    recipe = _recipe_of(recipe, run, overrides, registry)
    folder = run_folder(recipe, run_name, resume) if run is None or run_name is not None else None
    continued = folder is not None and RunDir(folder).last.is_file()  # a named run's, or a restarted group's
    run = RunDir(folder) if continued else run
    state = None
    if run is not None:
        check_resumable(recipe, run, registry, named=continued)
        state = read_training_checkpoint(run.last)
        if continued:
            say_continuing(run, state)
        if state["epoch"] >= recipe.train.epochs:  # before any data or model is built
            path = already_trained(run, state["epoch"], recipe.train.epochs, recipe.fit_prior is not None)
            _second_stage(recipe, run, progress)  # under torchrun, each process fits its share
            return path
    device = resolve_device(recipe.train.device)
    check_processes(recipe.train.processes, recipe.train.batch_size)
    if recipe.train.processes > 1 and device.type == "cpu" and not launched():
        args = (recipe.to_dict(), run.path if run else None, progress, None if run else run_name)
        return Path(run_in_processes(_train_launched, args, recipe.train.processes))  # the fit_prior stage too
    ddp = Distributed(device)
    built = _build(recipe, registry, ddp, state)
    created = run is None
    run = _open_run_folder(recipe, run, built.state.epoch, ddp, folder)
    try:
        _fit(built, recipe, run, registry, ddp, progress, observers)
    except BaseException as exc:
        _drop_if_unsaved(run, created, ddp)
        stopped = _stopped(exc, run)
        if stopped is exc:
            raise
        raise stopped from None
    else:
        _second_stage(recipe, run, progress)  # with several processes, each fits on its share of the codes
    finally:
        if ddp.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return run.path


def _recipe_of(recipe: Any, run: RunDir | None, overrides: list[str], registry: Registry) -> Recipe:
    """The recipe to train: as given, else read (with overrides), else the resumed run's own."""
    if isinstance(recipe, Recipe):
        return recipe
    source = recipe if recipe is not None else (run.recipe_file if run else None)
    if source is None:
        raise RecipeError("Give a recipe file, or --resume RUN to continue a run.")
    return load_recipe(source, overrides, registry)


@dataclass
class _Built:
    """The parts of a training, built (and restored from a checkpoint when resuming)."""

    data: DataSource
    model: torch.nn.Module
    metrics: list[Any]
    optimizer: torch.optim.Optimizer
    state: LoopState
    average: AveragedModel | None  # train.ema: the weights' moving average


def _build(recipe: Recipe, registry: Registry, ddp: Distributed, checkpoint: dict | None) -> _Built:
    torch.manual_seed(recipe.seed)
    with named_failures():  # a part that raises while being built is named in the error
        data = build_dataset(recipe, registry)
        model = _build_checked(recipe, data, registry, ddp.device)
        metrics = build_metrics(recipe.eval.metrics, registry)
    _check_objective(recipe, model)
    optimizer = build_optimizer(recipe, model, ddp.device)
    state = LoopState(torch.Generator().manual_seed(recipe.seed))
    average = weight_average(model, recipe.train.ema)
    if checkpoint is not None:
        restore_training(checkpoint, model, optimizer, state, average, recipe.train.part_lr)
    return _Built(data, model, metrics, optimizer, state, average)


def _check_objective(recipe: Recipe, model: torch.nn.Module) -> None:
    """Free bits and KL balancing belong to the ELBO; free bits on a single latent vector need
    the KL per dimension, which only a Gaussian prior gives (a hierarchy counts them per group)."""
    cfg = recipe.train
    if cfg.kl_balance and cfg.objective != "elbo":
        raise RecipeError(f"'train.kl_balance' applies to the elbo objective, not '{cfg.objective}': "
                          f"set train.kl_balance: false, or train.objective: elbo.")
    if cfg.free_bits <= 0:
        return
    if cfg.objective != "elbo":
        raise RecipeError(f"'train.free_bits' applies to the elbo objective, not '{cfg.objective}': "
                          f"set train.free_bits: 0, or train.objective: elbo.")
    if model.group_count == 1 and model.prior is not None and not callable(getattr(model.prior, "gaussian", None)):
        raise RecipeError(f"'train.free_bits' on a single latent vector needs the KL of each latent dimension, which "
                          f"only a Gaussian prior gives (N(0, I), or a prior with gaussian(cond)); 'model.prior' is "
                          f"'{recipe.model.prior.name}'. Set train.free_bits: 0, or use a Gaussian prior.")


def _open_run_folder(recipe: Recipe, run: RunDir | None, epoch: int, ddp: Distributed, folder: Path | None) -> RunDir:
    """A new run folder (`folder`, or a timestamped one), or the resumed one with its records
    past `epoch` dropped; process 0 makes it and every process gets its path. Under torchrun
    the job's id goes in, so a group torchrun restarts finds the run."""
    if ddp.main:
        if run is None:
            run = RunDir.create(recipe, folder)
            if os.environ.get("TORCHELASTIC_RUN_ID"):
                run.launch_file.write_text(os.environ["TORCHELASTIC_RUN_ID"])
        else:
            run.truncate_records(epoch)
            dump_recipe(recipe, run.recipe_file)  # the resumed run may train for more epochs
    return RunDir(Path(ddp.share(str(run.path) if ddp.main else None)))


def _fit(built: _Built, recipe: Recipe, run: RunDir, registry: Registry, ddp: Distributed, progress: bool,
         observers: list[Any] = ()) -> None:
    """The loop, with the run's trackers told how it ended, however it ends."""
    trackers = Trackers.of(recipe, registry, ddp.main, observers)
    if ddp.main:
        trackers.start(run.path, recipe)
    status = "failed"
    try:
        with flush_denormals(ddp.device), cpu_threads(ddp.device, recipe.train.threads), \
                Interrupts(distributed=ddp.world > 1) as interrupts:
            parts = LoopParts(recipe, run, built.model, _network(built.model, recipe, ddp), built.optimizer,
                              built.data, built.metrics, ddp, interrupts, progress=progress, trackers=trackers,
                              average=built.average,
                              first_step_parts=parts_of(built.model, recipe, registry))
            TrainingLoop(parts, built.state).fit()
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        trackers.close("stopped" if trackers.stopped else status, run.last)


def _stopped(exc: BaseException, run: RunDir) -> BaseException:
    """The error a stopped training ends with: what is saved and how to continue."""
    if isinstance(exc, KeyboardInterrupt):
        return TrainingInterrupted(interrupted_text(run))
    if isinstance(exc, DiskFullError) or (isinstance(exc, (OSError, RuntimeError)) and is_disk_full(exc, run.path)):
        what = str(exc) if isinstance(exc, DiskFullError) else \
            f"No space left on the device while writing into '{run.path}' ({exc})."
        return DiskFullError(f"{what} " + resume_text(run, "Free some space, then continue with"))
    return exc


def _train_launched(recipe: dict, resume: Path | None, progress: bool, run_name: str | None) -> str:
    """What each process of `train.processes` runs: its share of the training."""
    try:
        return str(train(recipe, resume=resume, run_name=run_name, progress=progress))
    except KeyboardInterrupt:  # before training began: nothing of this run was saved by it
        raise TrainingInterrupted("Interrupted before training began.") from None


def _second_stage(recipe: Recipe, run: RunDir, progress: bool) -> None:
    """The recipe's `fit_prior` stage, once training is done; an interrupt there loses no training."""
    if recipe.fit_prior is None:
        return
    try:
        second_stage(run, recipe.fit_prior, recipe.train.device, progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"Interrupted while fitting the prior (the recipe's fit_prior stage); the trained "
                                  f"model is saved in '{run.path}'. Fit it with: cvaekit run --resume {run.path}") from None


def _network(model: torch.nn.Module, recipe: Recipe, ddp: Distributed) -> torch.nn.Module:
    """What the steps call: the model (its weights in channels-last order if asked), wrapped for
    DDP, compiled if asked. The checkpoint always saves the plain model's state_dict."""
    if recipe.train.channels_last:
        model.to(memory_format=torch.channels_last)
    net = ddp.wrap(model)
    return torch.compile(net) if recipe.train.compile else net


def _build_checked(recipe: Recipe, data: DataSource, registry: Registry, device: torch.device):
    """The recipe's model on `device`, after the memory guard found that it fits there."""
    info = data.info()
    conditioner = build_conditioner(recipe.model, info, registry)
    raw = _sample_conditions(data, recipe.train.batch_size)
    if raw is not None:
        state = torch.get_rng_state()  # the guard must not change what training draws
        est = estimate(recipe.model, info, conditioner, registry, raw, recipe.train.batch_size)
        torch.set_rng_state(state)
        check_fits(est, recipe.model, device)
    return build_model(recipe.model, info, registry, conditioner=conditioner).to(device)


def _sample_conditions(data: DataSource, batch_size: int):
    """A few training conditions for the memory guard's trial pass (None for an empty split)."""
    n = min(len(data.train), batch_size, 16)
    if n == 0:
        return None
    return data.train.batch(torch.arange(n), generator=torch.Generator().manual_seed(0))[1]


def _drop_if_unsaved(run: RunDir | None, created: bool, ddp: Distributed) -> None:
    """A run this call created that stopped before its first checkpoint leaves no folder."""
    if run is not None and created and ddp.main and not run.last.is_file():
        shutil.rmtree(run.path, ignore_errors=True)
