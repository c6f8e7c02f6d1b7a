"""The `cvaekit` command: thin over the Python API, with errors as one clear paragraph.

One module per group of commands; each adds its commands to the one `app` (common.py)."""

from __future__ import annotations

from cvaekit.cli import training, models, info  # noqa: F401,I001 - each adds its commands to the app
from cvaekit.cli.common import app, err, friendly, out

__all__ = ["app", "err", "friendly", "out"]
