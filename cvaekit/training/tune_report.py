"""What `cvaekit tune` leaves: the table of trials, the best trial's recipe, and Optuna's plots."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cvaekit.plugins.registry import Registry
from cvaekit.recipe import dump_recipe, load_recipe
from cvaekit.training.tune_space import as_overrides

PLOTS = {"history": "plot_optimization_history", "importances": "plot_param_importances",
         "parallel_coordinates": "plot_parallel_coordinate"}


def trial_rows(study: Any) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(keys, value columns, rows): one row per trial, less those that stepped back untrained."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    params = list(dict.fromkeys(k for t in trials for k in t.params))
    rows = []
    for t in trials:
        retried = t.system_attrs.get("failed_trial")
        state = t.state.name.lower() + (f" (retry of {retried})" if retried is not None else "")
        shown = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in t.params.items()}
        rows.append({"trial": t.number, "state": state, **shown, "epochs": len(t.intermediate_values),
                     "run": Path(t.user_attrs.get("run", "-")).name, "value": t.value})
    return ["trial", "state", *params, "epochs", "run"], ["value"], rows


def best_recipe(study: Any, recipe: Any, overrides: list[str], registry: Registry, folder: Path) -> dict[str, Any] | None:
    """best.yaml: the recipe with the best complete trial's values (None before any completes)."""
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return None
    best = study.best_trial
    dump_recipe(load_recipe(recipe, [*overrides, *as_overrides(best.params)], registry), folder / "best.yaml")
    return {"trial": best.number, "value": best.value, "params": best.params, "run": best.user_attrs.get("run"),
            "recipe": folder / "best.yaml"}


def plots(study: Any, folder: Path) -> tuple[list[Path], list[str]]:
    """Optuna's history, importances and parallel coordinates as PNGs; and, for each that could
    not be drawn yet (too few complete trials), why."""
    from optuna.visualization import matplotlib as drawn

    (folder / "plots").mkdir(exist_ok=True)
    files, skipped = [], []
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's ExperimentalWarning on each plot
                axes = getattr(drawn, function)(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
            figure.tight_layout()
            figure.savefig(folder / "plots" / f"{name}.png", dpi=100)
            plt.close(figure)
            files.append(folder / "plots" / f"{name}.png")
        except Exception as exc:  # noqa: BLE001 - a plot that needs more trials is not an error
            plt.close("all")
            skipped.append(f"{name}: {' '.join(str(exc).split())[:200]}")
    return files, skipped
