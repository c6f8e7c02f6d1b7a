"""Recipe files: reading YAML, `--set key.path=value` overrides, loading, and writing back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from cvaekit.errors import RecipeError, did_you_mean
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe.builtin import builtin_named, builtin_recipes
from cvaekit.recipe.schema import Recipe
from cvaekit.recipe.validation import validate


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A recipe file's mapping; a path that is no file may name a built-in recipe instead."""
    path = builtin_named(path) or Path(path)
    if not path.is_file():
        names = builtin_recipes()
        raise RecipeError(f"Recipe file '{path}' does not exist, and no built-in recipe is called "
                          f"'{path.stem}'.{did_you_mean(path.stem, names)} `cvaekit recipes` lists those.")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as exc:
        raise RecipeError(f"Recipe file '{path}' is not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"Recipe file '{path}' must hold a mapping of keys, got {type(data).__name__}.")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` overrides (values parsed as YAML) to a copy of `data`."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"Override '{item}' must look like key.path=value, e.g. train.epochs=5.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise RecipeError(f"Override '{item}': the value is not valid YAML ({exc}). "
                              f"Quote a string that holds YAML syntax.") from None
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise RecipeError(f"Override '{item}': '{part}' is not an index of the "
                                      f"{len(node)}-item list at '{'.'.join(parts[:i])}'.")
                part = int(part)
            elif isinstance(node, dict):
                if isinstance(node.get(part), str) and not last:
                    node[part] = {"name": node[part]}  # `encoder: mlp` -> mapping form
                if not last:
                    node.setdefault(part, {})
            else:
                raise RecipeError(f"Override '{item}': '{'.'.join(parts[:i])}' holds a value, not keys.")
            if last:
                node[part] = value
            else:
                node = node[part]
    return data


def load_recipe(source: str | os.PathLike | dict[str, Any], overrides: list[str] = (),
                registry: Registry | None = None) -> Recipe:
    """Read (a path) or take (a dict) a recipe, apply overrides and validate it."""
    data = source if isinstance(source, dict) else read_yaml(source)
    data = apply_overrides(data, list(overrides))
    return validate(data, registry or get_registry())


def dump_recipe(recipe: Recipe, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))

