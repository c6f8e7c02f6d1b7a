"""The search space of `cvaekit tune`, from YAML: which recipe keys vary and how, what is
measured and which way is better, the sampler and the pruner.

    metric: nelbo            # an eval figure of the recipe's metrics, or train/loss, train/kl, ...
    direction: minimize      # or maximize
    at: last                 # the value of the last checkpoint, or the best one
    sampler: tpe             # tpe or random; or {name: tpe, seed: 0}
    pruner: median           # none, median or hyperband; or {name: median, n_startup_trials: 2}
    params:
      train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      model.latent_dim: {type: int, low: 4, high: 32, step: 4}
      model.encoder.name: [mlp, conv]         # a list: one of these (component names too)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cvaekit.errors import RecipeError, choices_text, did_you_mean

TOP = ("metric", "direction", "at", "sampler", "pruner", "params")
TYPES = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "log", "step"), "categorical": ("choices",)}
SAMPLERS, PRUNERS = ("tpe", "random"), ("none", "median", "hyperband")


@dataclass
class Space:
    params: dict[str, dict[str, Any]]  # key -> {type, low, high, log, step} or {type: categorical, choices}
    metric: str = "eval/nelbo"
    direction: str = "minimize"
    at: str = "last"
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})


def read_space(source: str | os.PathLike | dict[str, Any]) -> Space:
    """A space file (or its data) checked, or a RecipeError naming the key and the valid choices."""
    data = source if isinstance(source, dict) else _read(Path(source))
    for key in data:
        if key not in TOP:
            raise RecipeError(f"Unknown key '{key}' in the search space.{did_you_mean(key, TOP)} Valid keys: {choices_text(TOP)}.")
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise RecipeError("The search space needs 'params': recipe keys and how each varies, "
                          "e.g. params: {train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}.")
    metric = str(data.get("metric", "nelbo"))
    space = Space({k: _param(k, v) for k, v in params.items()}, metric if "/" in metric else f"eval/{metric}",
                  _one_of(data, "direction", ("minimize", "maximize")), _one_of(data, "at", ("last", "best")),
                  _named(data.get("sampler", "tpe"), "sampler", SAMPLERS), _named(data.get("pruner", "none"), "pruner", PRUNERS))
    return space


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"Search space file '{path}' does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipeError(f"Search space file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"Search space file '{path}' must hold a mapping with 'params', got {type(data).__name__}.")
    return data


def _one_of(data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = data.get(key, choices[0])
    if value not in choices:
        raise RecipeError(f"'{key}' in the search space must be one of {choices_text(choices)}, got {value!r}.")
    return value


def _named(value: Any, key: str, choices: tuple[str, ...]) -> dict[str, Any]:
    spec = {"name": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or spec.get("name") not in choices:
        raise RecipeError(f"'{key}' in the search space must be one of {choices_text(choices)} (or a mapping with "
                          f"'name' and the optuna {key}'s arguments), got {value!r}.")
    return dict(spec)


def _param(key: str, spec: Any) -> dict[str, Any]:
    """One varying key: a list is categorical; a mapping says its type and range."""
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise RecipeError(f"'params.{key}' must be a list of choices or a mapping with 'type' "
                          f"({choices_text(TYPES)}), got {spec!r}.")
    kind = spec["type"]
    for name in spec:
        if name != "type" and name not in TYPES[kind]:
            raise RecipeError(f"Unknown key 'params.{key}.{name}' for a {kind}.{did_you_mean(name, TYPES[kind])} "
                              f"Valid keys: {choices_text(TYPES[kind])}.")
    if kind == "categorical":
        if not isinstance(spec.get("choices"), list) or not spec["choices"]:
            raise RecipeError(f"'params.{key}.choices' must be a non-empty list, got {spec.get('choices')!r}.")
        return spec
    number = float if kind == "float" else int
    for bound in ("low", "high"):
        if isinstance(spec.get(bound), bool) or not isinstance(spec.get(bound), (int, float)):
            raise RecipeError(f"'params.{key}.{bound}' must be a number, got {spec.get(bound)!r}.")
        spec[bound] = number(spec[bound])
    if spec["low"] > spec["high"] or (spec.get("log") and spec["low"] <= 0):
        raise RecipeError(f"'params.{key}': low ({spec['low']}) must not be above high ({spec['high']}), "
                          f"and on a log scale both must be above 0.")
    return {"log": False, "step": None, **spec}


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """The trial's value of each key, drawn by the study's sampler."""
    values = {}
    for key, spec in space.params.items():
        if spec["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["type"] == "float":
            values[key] = trial.suggest_float(key, spec["low"], spec["high"], log=spec["log"], step=spec["step"])
        else:
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], log=spec["log"], step=spec["step"] or 1)
    return values


def corners(space: Space) -> list[dict[str, Any]]:
    """Points that together try every choice and both ends of every range: each is checked as
    a recipe before the first trial trains."""
    points = []
    for key, spec in space.params.items():
        values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
        points += [{key: v} for v in values]
    return points


def as_overrides(values: dict[str, Any]) -> list[str]:
    """{'train.lr': 1e-05} -> ['train.lr=1.0e-05']: YAML that reads back as the same value."""
    out = []
    for key, value in values.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        out.append(f"{key}={text[:-4].strip() if text.endswith(chr(10) + '...') else text}")
    return out
