"""Where cvaekit keeps what it can rebuild: extracted data, judges, text embeddings, decoded
pictures (`cvaekit cache` lists and clears them)."""

from __future__ import annotations

import os
from pathlib import Path

TAG = "CACHEDIR.TAG"  # marks the root as cvaekit's cache (https://bford.info/cachedir/): backups skip it
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by cvaekit: what is here is rebuilt when needed.\n"
            "# `cvaekit cache` lists it, `cvaekit cache clear` clears it.\n")


def default_root() -> Path:
    return Path.home() / ".cache" / "cvaekit"


def cache_root() -> Path:
    """$CVAEKIT_CACHE, else ~/.cache/cvaekit (not created)."""
    return Path(os.environ.get("CVAEKIT_CACHE") or default_root())


def cache_dir(*parts: str) -> Path:
    """$CVAEKIT_CACHE (default ~/.cache/cvaekit), joined with `parts`, created; the root gets
    its CACHEDIR.TAG."""
    root = cache_root()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    tag = root / TAG
    if not tag.is_file():
        try:
            tag.write_text(TAG_TEXT)
        except OSError:  # a read-only root still serves what it holds
            pass
    return path
