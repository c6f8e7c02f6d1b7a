"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from .errors import CvaekitError, DiskFullError


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file,
    and processes writing the same file at once never mix their bytes. A full disk leaves
    the previous `path` as it was and raises DiskFullError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        if not is_disk_full(exc, path.parent):
            raise
        raise DiskFullError(f"No space left to write '{path}' ({exc}); "
                            f"{'the previous one is intact' if path.is_file() else 'nothing was written'}.") from None


def is_disk_full(exc: BaseException, folder: Path, need: int = 1 << 20) -> bool:
    """Whether `exc` is a write that failed for lack of space in `folder`."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, RuntimeError) and "write" in str(exc):
        try:
            return shutil.disk_usage(folder).free < need
        except OSError:
            return False
    return False


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CvaekitError(f"Checkpoint '{path}' does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - say which file is bad, not a pickle traceback
        raise CvaekitError(f"Checkpoint '{path}' cannot be read ({type(exc).__name__}: {exc}).") from None
