"""What `sweep --jobs` and `tune --jobs` share when they start `cvaekit` commands side by side:
the cores divided among the processes, a recipe given as data handed over as a file, and the
end of a failed process's log to name it by."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_env(jobs: int) -> dict[str, str]:
    """The environment of `jobs` processes run at once: the cores divided among them
    (OMP_NUM_THREADS, unless the user set it)."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores() // jobs)))
    return env


def as_file(source: Any, path: Path) -> Any:
    """A recipe or space given as data goes to the processes as a file (`path`); a path stays."""
    if isinstance(source, (str, os.PathLike)):
        return source
    path.write_text(yaml.safe_dump(source, sort_keys=False))
    return path


def log_tail(log: Path, lines: int) -> str:
    """The last `lines` lines of a process's log, joined on one line."""
    return " / ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
