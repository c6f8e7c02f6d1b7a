"""The run's trackers: the recipe's `log` loggers, each guarded, and observers that code passes
to `train` (the tuner's pruning), which are not. Built on process 0 only, so under torchrun a
run is logged once."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from cvaekit.errors import CvaekitError
from cvaekit.plugins.registry import Registry, named_failures
from cvaekit.recipe import Recipe
from cvaekit.store.tracking import flatten

SKIPPED = ("kind", "epoch", "step", "checkpoint")


class LoggerFailed(UserWarning):
    """A logger raised: it is left out for the rest of the run, and training goes on."""


class Trackers:
    """Every logger told the same things; one that raises warns once and is dropped."""

    def __init__(self, loggers: list[tuple[str, Any]] = (), observers: list[Any] = ()):
        self.loggers = list(loggers)  # (name, logger)
        self.observers = list(observers)
        self.stopped = False  # an observer stopped the run: its trackers close it as `stopped`

    @classmethod
    def of(cls, recipe: Recipe, registry: Registry, main: bool, observers: list[Any] = ()) -> Trackers:
        """The recipe's loggers, built (an unknown parameter or a missing package stops the
        run before it trains); none outside process 0."""
        if not main:
            return cls()
        with named_failures():
            loggers = [(spec.name, registry.build("logger", spec.name, spec.params)) for spec in recipe.log]
        return cls(loggers, observers)

    def _call(self, method: str, *args: Any) -> None:
        for observer in self.observers:  # the tuner's reports: what they raise (a pruned trial) stops the run
            try:
                getattr(observer, method)(*args)
            except BaseException:
                self.stopped = True
                raise
        for name, logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:
                if method == "start" and isinstance(exc, CvaekitError):  # a missing package: say so before training
                    raise
                self.loggers.remove((name, logger))
                warnings.warn(f"The logger '{name}' failed in {method}() ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:300]}); the run goes on without it.",
                              LoggerFailed, stacklevel=2)

    def start(self, run: Path, recipe: Recipe) -> None:
        self._call("start", Path(run), flatten(recipe.to_dict()))

    def epoch(self, record: dict[str, Any]) -> None:
        """A train record of metrics.jsonl, as `train/<name>` figures."""
        self._call("epoch", record["epoch"], _figures("train", record))

    def checkpoint(self, epoch: int, results: dict[str, float], images: dict[str, Path]) -> None:
        self._call("checkpoint", epoch, _figures("eval", results), images)

    def close(self, status: str, checkpoint: Path | None) -> None:
        self._call("close", status, checkpoint if checkpoint is not None and checkpoint.is_file() else None)


def _figures(prefix: str, record: dict[str, Any]) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in record.items()
            if k not in SKIPPED and isinstance(v, (int, float)) and not isinstance(v, bool)}
