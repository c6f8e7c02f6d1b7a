"""cvaekit: text-to-image conditional VAEs from plugins and YAML recipes.

The names below are the public API (docs/api.md). They load on first use, so
`import cvaekit` imports no torch: a command's help, `list-components` and a plugin's
registration stay fast. How the engine is laid out: docs/api.md, "The engine's layout".
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from cvaekit import _moved
from cvaekit.runtime.threads import choose_thread_settings

__version__ = "0.4.0"

choose_thread_settings()  # before anything imports torch

# name -> the module that defines it
_API = {
    # running the study: the commands' Python side
    "train": "cvaekit.training.run",
    "TrainingInterrupted": "cvaekit.training.run",
    "TrainingDiverged": "cvaekit.training.divergence",
    "load_run": "cvaekit.assembly",
    "TrainedRun": "cvaekit.assembly",
    "generate": "cvaekit.serving.generate",
    "interpolate": "cvaekit.serving.generate",
    "sample_rows": "cvaekit.core.sampling",
    "evaluate": "cvaekit.evaluation.checkpoints",
    "fit_prior": "cvaekit.training.fit_prior",
    "sweep": "cvaekit.training.sweep",
    "export_run": "cvaekit.serving.export",
    "push_run": "cvaekit.serving.export",
    "prepare": "cvaekit.training.prepare",
    "load_recipe": "cvaekit.recipe.files",
    "Recipe": "cvaekit.recipe.schema",
    "RunDir": "cvaekit.store.runs",
    # plugins
    "hookimpl": "cvaekit.plugins.hookspecs",
    "get_registry": "cvaekit.plugins.loading",
    "register_plugin": "cvaekit.plugins.loading",
    # what a component receives and returns
    "Condition": "cvaekit.core.condition",
    "DataInfo": "cvaekit.core.data",
    "DataSource": "cvaekit.core.data",
    "Split": "cvaekit.core.data",
    "CVAE": "cvaekit.core.model",
    "EvalContext": "cvaekit.evaluation.context",
    # errors
    "CvaekitError": "cvaekit.errors",
    "RecipeError": "cvaekit.errors",
    "DataError": "cvaekit.errors",
    "ComponentError": "cvaekit.errors",
    "UnknownConditionError": "cvaekit.errors",
}

__all__ = ["__version__", *_API]
_moved.install(sys.modules[__name__])  # import paths from before 0.2 keep working


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'cvaekit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

