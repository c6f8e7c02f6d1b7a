"""The trials of `cvaekit tune`: the study in its database, the objective that trains one
trial as a normal run, and a worker's loop.

Every worker (on this machine or on others, against one PostgreSQL URL) asks the study for the
next trial until it has finished `trials` of them (complete or pruned): none is counted twice.
A worker that dies stops beating its heart; another marks its trial failed and runs it again
(Optuna's RDBStorage heartbeat and RetryFailedTrialCallback). Ctrl-C fails only the running
trial, so the study stays usable.
"""

from __future__ import annotations

import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import load_recipe
from cvaekit.runtime.optional import require
from cvaekit.store.tracking import Logger
from cvaekit.training.tune_space import (
    Space,
    as_overrides,
    corners,
    read_space,
    suggest,
)

DONE = ("COMPLETE", "PRUNED")


class TuneInterrupted(CvaekitError):
    """Ctrl-C: the running trial is marked failed, and the study can be continued."""

    exit_code = 130


class _Surplus(Exception):
    """Two workers took the last place at once: the later trial steps back, untrained."""


def folder_of(runs_dir: str, name: str, study: str) -> Path:
    return Path(runs_dir) / f"{name}-tune-{re.sub(r'[^A-Za-z0-9_.-]+', '_', study)}"


def open_study(url: str, name: str, space: Space, heartbeat: int, epochs: int) -> Any:
    """The study `name` in the database at `url` (made if missing), with heartbeats, retries of
    the trials of a worker that died, and the space's sampler and pruner."""
    optuna = require("optuna", "tune", "cvaekit tune")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the worker says what fails
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith(("postgresql://", "postgres://")):  # the driver the `tune` extra installs, whatever SQLAlchemy's default
        url = "postgresql+psycopg://" + url.partition("://")[2]
    for attempt in range(5):  # workers starting together on a new database may race to make its tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the heartbeat is marked experimental in optuna
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                                     grace_period=2 * heartbeat, **_retry(optuna))
            return optuna.create_study(storage=storage, study_name=name, direction=space.direction,
                                       sampler=_sampler(optuna, space), pruner=_pruner(optuna, space, epochs),
                                       load_if_exists=True)
        except Exception as exc:  # noqa: BLE001 - the last attempt says what went wrong
            if attempt == 4 or "No module named" in str(exc):
                raise CvaekitError(f"Could not open the study '{name}' in '{url}': {type(exc).__name__}: {exc}") from None
            time.sleep(0.5 + attempt)


def _retry(optuna: Any) -> dict[str, Any]:
    """A dead worker's trial run again (at most 3 times), by the name this optuna gives it."""
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # optuna 4.9 and later
        return {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=3)}


def _sampler(optuna: Any, space: Space) -> Any:
    args = {k: v for k, v in space.sampler.items() if k != "name"}
    return {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[space.sampler["name"]](**args)


def _pruner(optuna: Any, space: Space, epochs: int) -> Any:
    args = {k: v for k, v in space.pruner.items() if k != "name"}
    name = space.pruner["name"]
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**{"min_resource": 1, "max_resource": epochs, **args})
    return optuna.pruners.MedianPruner(**args) if name == "median" else optuna.pruners.NopPruner()


class Report(Logger):
    """What the trial's run tells the study: the objective's figure at each epoch that has it
    (the pruner's evidence), and its run folder. Raises TrialPruned to stop a hopeless run."""

    def __init__(self, trial: Any, space: Space):
        self.trial, self.space, self.values = trial, space, {}

    def start(self, run: Path, params: dict[str, Any]) -> None:
        self.trial.set_user_attr("run", str(Path(run).resolve()))
        self.trial.set_user_attr("host", socket.gethostname())

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        self._see(epoch, figures)

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        self._see(epoch, figures)

    def _see(self, epoch: int, figures: dict[str, float]) -> None:
        metric, kind = self.space.metric, self.space.metric.split("/")[0]
        if not any(k.startswith(f"{kind}/") for k in figures):
            return  # the other kind of figures (train vs eval)
        if metric not in figures:
            raise RecipeError(f"The search space's metric '{metric}' is not a figure this recipe reports; it reports "
                              f"{', '.join(sorted(figures))}. Name one of them in the space's 'metric'.")
        self.values[epoch] = figures[metric]
        self.trial.report(figures[metric], epoch)
        if self.trial.should_prune():
            optuna = require("optuna", "tune", "cvaekit tune")
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric} {figures[metric]:.4g})")

    def value(self) -> float:
        if not self.values:
            raise CvaekitError(f"The trial's run reported no '{self.space.metric}' (an eval metric is measured at "
                               f"each kept checkpoint).")
        values = list(self.values.values())
        return values[-1] if self.space.at == "last" else (min if self.space.direction == "minimize" else max)(values)


class Tuner:
    """One worker's part of a study: the objective that trains a trial, and the loop that asks
    for trials until the study has its number."""

    def __init__(self, recipe: Any, space: Space, trials: int, overrides: list[str], folder: Path,
                 registry: Registry, name: str):
        self.recipe, self.space, self.trials, self.overrides = recipe, space, trials, list(overrides)
        self.folder, self.registry, self.name = folder, registry, name

    def objective(self, trial: Any) -> float:
        from cvaekit.training.run import TrainingDiverged, TrainingInterrupted, train

        optuna = require("optuna", "tune", "cvaekit tune")
        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise _Surplus()
        sets = [*self.overrides, *as_overrides(suggest(trial, self.space)),
                f"runs_dir={self.folder / 'trials'}", f"name={self.name}-trial{trial.number}"]
        report = Report(trial, self.space)
        try:
            train(self.recipe, overrides=sets, registry=self.registry, progress=False, observers=[report])
        except TrainingDiverged as exc:  # a setting too steep: the trial ends early, as a pruned one
            trial.set_user_attr("diverged", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except (TrainingInterrupted, KeyboardInterrupt):
            trial.set_user_attr("interrupted", True)
            raise TuneInterrupted(f"Interrupted: trial {trial.number} stopped and is marked failed (its run folder "
                                  f"keeps what it saved). The study stays usable; the same command continues it.") from None
        return report.value()

    def _surplus(self, trial: Any) -> bool:
        """Whether `trials` trials before this one are finished or under way (another worker
        took the last place in the same instant)."""
        optuna = require("optuna", "tune", "cvaekit tune")
        live = (*[optuna.trial.TrialState[s] for s in DONE], optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        return sum(t.number < trial.number for t in trial.study.get_trials(deepcopy=False, states=live)) >= self.trials

    def work(self, study: Any, advance: Any = lambda done: None) -> None:
        """Run trials until the study has `trials` finished; wait while others run the last ones
        (a dead worker's trial is failed after its grace period, then retried here)."""
        optuna = require("optuna", "tune", "cvaekit tune")
        while True:
            states = [t.state.name for t in study.get_trials(deepcopy=False)]
            done = sum(s in DONE for s in states)
            advance(done)
            if done >= self.trials:
                return
            if "WAITING" not in states and done + states.count("RUNNING") >= self.trials:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # experimental in optuna
                    optuna.storages.fail_stale_trials(study)
                time.sleep(1.0)
                continue
            study.optimize(self.objective, n_trials=1, catch=(_Surplus,), gc_after_trial=False)


def prepared(recipe: Any, space_source: Any, trials: int, overrides: list[str], registry: Registry,
             study: str | None) -> tuple[Space, Any, str, Path]:
    """The space and the recipe, checked at every corner of the space before anything trains."""
    if not isinstance(trials, int) or trials < 1:
        raise RecipeError(f"tune: '--trials' must be a whole number of at least 1, got {trials!r}.")
    space = read_space(space_source)
    base = load_recipe(recipe, overrides, registry)
    if base.train.processes > 1:
        raise RecipeError("tune runs each trial in one process: set train.processes: 1 (start more workers instead).")
    for point in corners(space):
        try:
            load_recipe(recipe, [*overrides, *as_overrides(point)], registry)
        except RecipeError as exc:
            raise RecipeError(f"The search space's value {as_overrides(point)[0]} does not make a valid recipe: {exc}") from None
    name = study or base.name
    return space, base, name, folder_of(base.runs_dir, base.name, name)
