"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import CvaekitError


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file,
    and processes writing the same file at once never mix their bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CvaekitError(f"Checkpoint '{path}' does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - say which file is bad, not a pickle traceback
        raise CvaekitError(f"Checkpoint '{path}' cannot be read ({type(exc).__name__}: {exc}).") from None
