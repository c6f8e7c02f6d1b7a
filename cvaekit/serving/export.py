"""Sharing a trained model: `cvaekit export` writes one checkpoint of a run as a folder in the
Hugging Face Hub's model layout (store/exported.py owns it): the weights as safetensors, the
recipe and what loading needs as plain files, a sample grid and a model card. `cvaekit push`
exports into a temporary folder and uploads it in one commit."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from cvaekit.assembly import TrainedRun, load_run
from cvaekit.core.sampling import sample_rows
from cvaekit.evaluation.checkpoints import KEYS
from cvaekit.evaluation.figures import labelled_grid
from cvaekit.evaluation.tables import read_table
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import KIND_OF, Recipe, read_yaml
from cvaekit.serving.card import model_card
from cvaekit.store.checkpoint import read_fitted_prior
from cvaekit.store.exported import (
    GRID,
    check_export_folder,
    tensors_only,
    write_exported,
)
from cvaekit.store.hub import check_can_push, push_folder

GRID_IMAGES, GRID_SEED = 8, 0  # the card's grid: `cvaekit generate MODEL TEXTS -n 8 --seed 0`


def export_run(run: str | os.PathLike, out: str | os.PathLike, checkpoint: str | None = None,
               registry: Registry | None = None, repo_id: str | None = None) -> Path:
    """Write the model at `checkpoint` ('last' by default) of a run (or an exported model)
    as an exported folder `out`; return it. `repo_id` is the name the card's examples use
    (default: `out`)."""
    registry = registry or get_registry()
    check_export_folder(out)  # before the run is loaded
    base = load_run(run, checkpoint, registry, fitted_prior=False)
    trained = load_run(run, checkpoint, registry) if _has_fitted(base) else base
    recipe_text = yaml.safe_dump({**read_yaml(base.run.recipe_file), "runs_dir": "runs"}, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        texts, grid = sample_grid(trained, Path(tmp) / GRID)
        config = export_config(trained, registry, texts)
        card = model_card(trained.recipe, config, recipe_text, repo_id or str(out), grid is not None)
        prior = tensors_only(trained.model.prior.state_dict(), "fitted prior") if trained.fitted_prior else None
        records = [r for r in base.run.records() if r.get("kind") == "eval" and r.get("epoch") == base.epoch]
        return write_exported(out, weights=tensors_only(base.model.state_dict(), "model"), prior=prior,
                              recipe_text=recipe_text, config=config, card=card,
                              grid=grid, records=records)


def push_run(run: str | os.PathLike, repo_id: str, checkpoint: str | None = None, private: bool = False,
             revision: str | None = None, registry: Registry | None = None) -> str:
    """Export a run's checkpoint and upload it as the model repository `repo_id` (one
    commit); return the commit's address. Offline or without a token, a `CvaekitError`
    before anything is exported; nothing stays on disk either way."""
    check_can_push(repo_id)
    folder = Path(tempfile.mkdtemp(prefix="cvaekit-push-"))
    try:
        export_run(run, folder / "model", checkpoint, registry, repo_id=repo_id)
        return push_folder(folder / "model", repo_id, private=private, revision=revision)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _has_fitted(trained: TrainedRun) -> bool:
    if trained.exported is not None:
        return trained.exported.has_prior
    return trained.run.fitted_prior(trained.epoch).is_file()


def sample_grid(trained: TrainedRun, path: Path) -> tuple[list[str], Path | None]:
    """The card's grid and its texts: the class words, or the recipe's `eval.conditions`,
    drawn as `cvaekit generate` draws them; else the grid training drew at that checkpoint."""
    classes = getattr(trained.model.conditioner, "classes", None)
    texts = list(classes or trained.recipe.eval.conditions or [])
    if texts:
        rows = sample_rows(trained.model, texts, GRID_IMAGES, GRID_SEED)
        return texts, labelled_grid(rows, texts, path)
    if trained.exported is not None:
        found = trained.exported.path / GRID
    elif trained.fitted_prior:
        found = trained.run.fitted_samples(trained.epoch, read_fitted_prior(trained.fitted_prior)["prior"]["name"])
    else:
        found = trained.run.samples(trained.epoch)
    return [], (found if found.is_file() else None)


def export_config(trained: TrainedRun, registry: Registry, texts: list[str]) -> dict[str, Any]:
    """What loading needs beside the recipe, and what the card shows."""
    from cvaekit import __version__

    recipe, model = trained.recipe, trained.model
    conditioner = recipe.model.conditioner
    encoder = conditioner.params.get("model")
    config = {
        "cvaekit_version": __version__,
        "name": recipe.name,
        "epoch": trained.epoch,
        "data": {**model.data_info.to_dict(), "name": recipe.data.name},
        "conditioner": {"name": conditioner.name, "params": conditioner.params},
        "latent_dim": recipe.model.latent_dim,
        "latent_groups": model.group_count,
        "components": components_of(recipe, registry),
        "prior": "fitted" if trained.fitted_prior else "trained",
        "metrics": checkpoint_metrics(trained),
        "grid": {"texts": texts, "n": GRID_IMAGES, "seed": GRID_SEED},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if isinstance(encoder, str):
        config["text_encoder"] = encoder
    if trained.fitted_prior:
        config["fitted_prior"] = (trained.exported.config["fitted_prior"] if trained.exported is not None
                                  else read_fitted_prior(trained.fitted_prior)["prior"])
    return config


def components_of(recipe: Recipe, registry: Registry) -> list[dict[str, str]]:
    """Each component the recipe names, with the package (and version) that provides it."""
    specs = [("data", recipe.data), ("conditioner", recipe.model.conditioner), ("encoder", recipe.model.encoder),
             ("decoder", recipe.model.decoder), ("prior", recipe.model.prior),
             ("likelihood", recipe.model.likelihood), ("prior", recipe.fit_prior and recipe.fit_prior.prior)]
    specs += [("injections", s) for s in recipe.model.injections] + [("metrics", s) for s in recipe.eval.metrics]
    found: dict[tuple[str, str], dict[str, str]] = {}
    for key, spec in specs:
        if spec is None:
            continue
        kind = KIND_OF[key]
        origin = registry.get(kind, spec.name).origin
        package = origin.split()[0] if origin != "runtime" else None
        found.setdefault((kind, spec.name), {"kind": kind, "name": spec.name, "origin": origin, "package": package})
    return list(found.values())


def checkpoint_metrics(trained: TrainedRun) -> dict[str, float]:
    """The metrics of this checkpoint: what training measured, and over it what `cvaekit
    evaluate` measured with the prior the model samples from."""
    if trained.exported is not None:
        return dict(trained.exported.config.get("metrics", {}))
    metrics = dict(trained.run.metrics_at(trained.epoch))
    prior = "fitted" if trained.fitted_prior else "trained"
    try:
        table = read_table(trained.run.evaluation_stem, KEYS)
    except ValueError:  # an unreadable table: `evaluate` sets it aside; the card goes without it
        table = None
    for row in (table[0] if table else []):
        if row.get("epoch") == trained.epoch and row.get("prior") in (prior, ""):
            metrics.update(row)
    return {k: float(v) for k, v in metrics.items()
            if k not in (*KEYS, "test_images", "checkpoint", "step") and isinstance(v, (int, float))}
