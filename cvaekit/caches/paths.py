"""Where cvaekit keeps what it can rebuild: extracted data, judges, text embeddings."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$CVAEKIT_CACHE (default ~/.cache/cvaekit), joined with `parts`, created."""
    root = Path(os.environ.get("CVAEKIT_CACHE", Path.home() / ".cache" / "cvaekit"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
