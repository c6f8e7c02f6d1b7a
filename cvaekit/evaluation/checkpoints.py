"""`cvaekit evaluate`: every metric at every checkpoint of a run, as one table (the study's
Table 3), and the figures that show a run's progress: samples for fixed prompts and
reconstructions of fixed test images at every checkpoint (its Figures 3 and 6).

Writes into the run folder:

    evaluation.csv / evaluation.json   one row per checkpoint, prior and number of test images,
                                       one column per metric; each evaluation is merged in
    samples_by_epoch.png               rows = checkpoints, columns = prompts (same noise)
    reconstructions_by_epoch.png       rows = real, then each checkpoint; columns = test images

The table is never overwritten: what an evaluation measures replaces the same checkpoint,
prior, number of test images and metric, and every other value stays. Each row says which
prior sampled it: `trained` (the model's own, the recipe's `model.prior`; N(0, I) when it
names none) or `fitted` (the one `cvaekit fit-prior` saved beside the checkpoint).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cvaekit.assembly import build_dataset, build_metrics, load_run, local_run
from cvaekit.errors import CvaekitError, choices_text
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.evaluation.progress import ProgressFigures
from cvaekit.evaluation.tables import merge_rows, read_table, write_table
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import ComponentSpec, Recipe, component_spec, guided_metrics_trained
from cvaekit.runtime.device import resolve_device
from cvaekit.store.checkpoint import read_training_checkpoint
from cvaekit.store.runs import RunDir

PRIORS = ("auto", "trained", "fitted")
KEYS = ["epoch", "prior", "test_images"]  # one row of evaluation.csv per value of these


@dataclass
class Evaluation:
    """What `evaluate` measured and wrote."""

    run: Path
    columns: list[str]  # metric names, in order
    rows: list[dict[str, Any]]  # measured now: {"epoch", "prior", "test_images", "checkpoint", **metrics}, oldest first
    files: list[Path] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)  # every row of evaluation.csv, these merged in
    notes: list[str] = field(default_factory=list)  # what else the user should know (a table kept aside)


# ---------------------------------------------------------------------------- choosing

def checkpoint_paths(run: RunDir, which: str = "all") -> list[Path]:
    """'all' (every kept checkpoint; last.pt when none is kept), 'last', or a comma list
    of epochs (or paths)."""
    which = (which or "all").strip()
    if which == "all":
        kept = [p for _, p in run.checkpoints()]
        return kept or [run.resolve_checkpoint("last")]
    return [run.resolve_checkpoint(item.strip()) for item in which.split(",") if item.strip()]


def metric_specs(recipe: Recipe, chosen: list[str | dict] | None,
                 registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) of the metrics to run: the recipe's own (with their parameters), or the
    chosen ones: a name takes the recipe's parameters where it names that metric too, a
    mapping (`{name: caption_match, temperature: 0.8}`, as in a recipe) its own."""
    own = {m.name: m.params for m in recipe.eval.metrics}
    if not chosen and not own:
        valid = registry.names("metric")
        raise CvaekitError(f"This run's recipe names no metrics (eval.metrics), so say which: "
                           f"--metrics {','.join(valid[:2])}. Valid metrics: {choices_text(valid)}.")
    if not chosen:
        return list(own.items())
    specs = []
    for i, item in enumerate(chosen):
        if isinstance(item, str):
            specs.append((item, own.get(item, {})))
        else:
            spec = component_spec(ComponentSpec, item, f"--metrics.{i}", "metric", registry)
            specs.append((spec.name, spec.params))
    guided_metrics_trained(specs, recipe.train.cond_dropout, "--metrics")
    return specs


def parse_metric_choice(text: str | None) -> list[str | dict] | None:
    """`--metrics`: names separated by commas, or a YAML list as a recipe's eval.metrics has it
    (names and mappings with parameters)."""
    if not text or not text.strip():
        return None
    if not text.strip().startswith("["):
        return [m.strip() for m in text.split(",") if m.strip()]
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CvaekitError(f"--metrics is not a YAML list: {exc}. Write names separated by commas, or a list as "
                           f"in a recipe: '[nelbo, {{name: caption_match, temperature: 0.8}}]'.") from None
    if not isinstance(items, list) or not all(isinstance(i, (str, dict)) for i in items):
        raise CvaekitError(f"--metrics must list metric names or mappings with 'name' (as a recipe's "
                           f"eval.metrics), got {items!r}.")
    return items


# ---------------------------------------------------------------------------- priors

def check_prior_choice(run: RunDir, paths: list[Path], prior: str) -> None:
    """`prior` is one of PRIORS; with 'fitted', every chosen checkpoint has a fitted prior.
    Said before anything is measured."""
    if prior not in PRIORS:
        raise CvaekitError(f"Unknown prior choice '{prior}'. Valid: 'auto' (the fitted prior where `cvaekit "
                           f"fit-prior` fitted one, else the trained one), 'trained', 'fitted'.")
    if prior != "fitted":
        return
    lacking = [e for e in map(_epoch_of, paths) if not run.fitted_prior(e).is_file()]
    if lacking:
        fitted = [str(e) for e, _ in run.checkpoints() if run.fitted_prior(e).is_file()]
        raise CvaekitError(f"--prior fitted: the checkpoint of epoch {lacking[0]} has no fitted prior. Fit one "
                           f"with: cvaekit fit-prior {run.path} --checkpoint {lacking[0]}; or evaluate with "
                           f"--prior trained. Epochs with a fitted prior: {', '.join(fitted) or 'none'}.")


def _epoch_of(path: Path) -> int:
    m = re.fullmatch(r"epoch-(\d+)\.pt", Path(path).name)
    return int(m.group(1)) if m else int(read_training_checkpoint(path)["epoch"])


# ---------------------------------------------------------------------------- evaluate

def evaluate(run: str | os.PathLike, checkpoints: str = "all", metrics: list[str | dict] | None = None,
             registry: Registry | None = None, device: str = "auto", limit: int | None = None,
             figures: bool = True, prior: str = "auto", into: str | os.PathLike | None = None,
             text_encoder: str | None = None) -> Evaluation:
    """Measure `metrics` (default: the recipe's eval.metrics; names, or mappings with their
    parameters as a recipe lists them) at the chosen checkpoints of a run, merge them into
    evaluation.csv/.json (and draw the progress figures), and return them. `prior`: 'auto'
    samples from the prior `fit-prior` fitted to a checkpoint when there is one (as generate
    and serve do), else from the trained one; 'trained' or 'fitted' chooses. An exported
    model or a hub id is first copied into a local run folder (`into`, default
    runs/<name>-<timestamp>), and the table is written there."""
    registry = registry or get_registry()
    run_dir = RunDir.open(local_run(run, into, text_encoder))
    paths = checkpoint_paths(run_dir, checkpoints)
    check_prior_choice(run_dir, paths, prior)
    fitted = prior != "trained"
    first = load_run(run_dir.path, str(paths[0]), registry, resolve_device(device, "--device"), fitted_prior=fitted)
    recipe = first.recipe
    built = build_metrics(metric_specs(recipe, metrics, registry), registry)
    data = build_dataset(recipe, registry)
    test = data.test.head(limit or recipe.eval.limit)
    if len(test) == 0:
        raise CvaekitError(f"The test split of '{recipe.data.name}' is empty: nothing to evaluate.")
    progress = ProgressFigures(data, recipe) if figures else None

    by_epoch: dict[int, dict[str, Any]] = {}
    for path in paths:
        trained = first if path == paths[0] else load_run(run_dir.path, str(path), registry, first.model.device,
                                                          fitted_prior=fitted)
        results = run_metrics(built, EvalContext(trained.model, data, test, seed=recipe.seed))
        if progress is not None:
            progress.add(trained.epoch, trained.model)
        by_epoch[trained.epoch] = {"epoch": trained.epoch, "prior": "fitted" if trained.fitted_prior else "trained",
                                   "test_images": len(test), "checkpoint": _relative(path, run_dir.path), **results}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in (*KEYS, "checkpoint")))
    result = Evaluation(run_dir.path, columns, rows)
    result.table, all_columns = _merged(run_dir, rows, columns, result.notes)
    result.files = write_table(result.table, KEYS, all_columns, run_dir.evaluation_stem,
                               extra={"run": str(run_dir.path), "recipe": recipe.name})
    if progress is not None:
        result.files += progress.write(run_dir)
    return result


def _merged(run: RunDir, rows: list[dict], columns: list[str], notes: list[str]) -> tuple[list[dict], list[str]]:
    """The run's table with `rows` merged in, and its metric columns. A table that cannot be
    read is kept aside under a new name (and a note says so), never overwritten."""
    stem = run.evaluation_stem
    try:
        found = read_table(stem, KEYS)
    except ValueError as exc:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in (".json", ".csv"):
            if stem.with_suffix(suffix).is_file():
                os.replace(stem.with_suffix(suffix), stem.with_name(f"evaluation-unreadable-{stamp}{suffix}"))
        notes.append(f"{exc}: kept as evaluation-unreadable-{stamp}.* and a new table begun.")
        found = None
    if found is None:
        return rows, columns
    old, old_columns, extra = found
    for row in old:  # a table from before each row said its prior and its test images
        row.setdefault("prior", "")
        row.setdefault("test_images", extra.get("test_images", ""))
    return merge_rows(old, rows, KEYS), list(dict.fromkeys([*old_columns, *columns]))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
