"""The `cvaekit` command: thin over the Python API, with errors as one clear paragraph.

One module per group of commands; each adds its commands to the one `app` (common.py). The
command functions stay importable from here, as when this was one module."""

from __future__ import annotations

# In this order, the order of `cvaekit --help`: training, using and sharing models, telling.
from cvaekit.cli.common import app, err, friendly, out  # noqa: I001
from cvaekit.cli.info import (
           cache_clear,
           cache_list,
           describe_cmd,
           list_components,
           recipes_list,
           recipes_show,
)
from cvaekit.cli.models import (
           evaluate_cmd,
           export_cmd,
           generate_cmd,
           push_cmd,
           serve_cmd,
)
from cvaekit.cli.training import fit_prior_cmd, prepare_cmd, run_cmd, sweep_cmd
from cvaekit.cli.tuning import tune_cmd

__all__ = ["app", "cache_clear", "cache_list", "describe_cmd", "err", "evaluate_cmd", "export_cmd", "fit_prior_cmd",
           "friendly", "generate_cmd", "list_components", "out", "prepare_cmd", "push_cmd", "recipes_list",
           "recipes_show", "run_cmd", "serve_cmd", "sweep_cmd", "tune_cmd"]
