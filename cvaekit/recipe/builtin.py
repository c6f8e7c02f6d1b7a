"""The recipes that come with cvaekit (`cvaekit/recipes/*.yaml`, package data, so an installed
wheel carries them): `cvaekit run quickstart` names one instead of giving a path."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from cvaekit.errors import RecipeError, did_you_mean

SHORT = 100  # characters of a recipe's line in `cvaekit recipes`


def builtin_folder() -> Path:
    return Path(str(resources.files("cvaekit") / "recipes"))


def builtin_recipes() -> dict[str, Path]:
    """Each built-in recipe's name and file, by name."""
    return {p.stem: p for p in sorted(builtin_folder().glob("*.yaml"))}


def summary(path: Path) -> str:
    """The first sentence of a recipe file's opening comment ('' when it has none)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = re.split(r"(?<=[.!?])\s", " ".join(lines), maxsplit=1)[0]
    if len(text) > SHORT:  # a line each: up to its first colon, else cut
        text = text.split(": ", 1)[0]
    return text if len(text) <= SHORT else text[: SHORT - 3].rsplit(" ", 1)[0] + "..."


def builtin_named(source: str | os.PathLike) -> Path | None:
    """The built-in recipe `source` names: a bare name (`quickstart`, `quickstart.yaml`), or
    `recipes/NAME.yaml` where no such file is (the form the docs use, from any folder)."""
    path = Path(source)
    if path.is_file() or (len(path.parts) > 1 and path.parent.as_posix() != "recipes"):
        return None
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    return builtin_recipes().get(name)


def builtin_text(name: str) -> str:
    """The text of the built-in recipe `name` (`cvaekit recipes show NAME`)."""
    found = builtin_named(name)
    if found is None:
        names = builtin_recipes()
        raise RecipeError(f"No built-in recipe is called '{name}'.{did_you_mean(name, names)} "
                          f"`cvaekit recipes` lists them: {', '.join(names)}.")
    return found.read_text()
