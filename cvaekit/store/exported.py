"""An exported model: a folder in the Hugging Face Hub's model layout, with nothing pickled.

    README.md           the model card: YAML front matter (library_name: cvaekit, tags, the
                        data set, the metrics) above a body a person reads
    model.safetensors   the model's weights (its state_dict), tensors only
    prior.safetensors   the prior `fit-prior` fitted to that checkpoint, when there is one
    recipe.yaml         the resolved recipe
    config.json         what loading needs besides: the format, the epoch, the data's image
                        shape, class words and aliases, the conditioner, the fitted prior's
                        name and parameters, the package behind each component, the metrics
    samples.png         a labelled sample grid
    metrics.jsonl       what training measured at that checkpoint (a run folder's lines)

This module is the one owner of that layout. Reading refuses, in one line each: a pickle
where weights go, a card naming another library, weights whose names or shapes are not the
recipe's model, a format newer than this cvaekit reads.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from cvaekit.errors import CvaekitError

FORMAT = 1
LIBRARY = "cvaekit"
CARD, WEIGHTS, PRIOR, RECIPE, CONFIG, GRID, METRICS = (
    "README.md", "model.safetensors", "prior.safetensors", "recipe.yaml", "config.json", "samples.png",
    "metrics.jsonl")
# Files that hold (or may hold) a pickle, which can run code when it is loaded.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib")


@dataclass(frozen=True)
class ExportedModel:
    """An exported folder, checked on opening (see the module's docstring)."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike, name: str | None = None) -> ExportedModel:
        """`name`: what the user gave (a hub id, say), for the messages."""
        path = Path(path)
        what = name or str(path)
        check_no_pickles(path, what)
        check_card(path, what)
        if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
            missing = [f for f in (CONFIG, WEIGHTS, RECIPE) if not (path / f).is_file()]
            raise CvaekitError(f"'{what}' is not an exported cvaekit model: it has no {' or '.join(missing)}.")
        config = json.loads((path / CONFIG).read_text())
        if config.get("library_name") != LIBRARY:
            raise CvaekitError(f"'{what}' is not an exported cvaekit model: its config.json is another "
                               f"library's (library_name: {config.get('library_name')!r}). Refused.")
        if config.get("format", 0) > FORMAT:
            raise CvaekitError(f"'{what}' was exported in format {config['format']} by a newer cvaekit; "
                               f"this one reads format {FORMAT}. Upgrade cvaekit.")
        return cls(path)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads((self.path / CONFIG).read_text())

    @property
    def recipe_file(self) -> Path:
        return self.path / RECIPE

    @property
    def has_prior(self) -> bool:
        return (self.path / PRIOR).is_file()

    def weights(self) -> dict[str, torch.Tensor]:
        return read_tensors(self.path / WEIGHTS)

    def prior_weights(self) -> dict[str, torch.Tensor]:
        return read_tensors(self.path / PRIOR)


def looks_exported(path: Path) -> bool:
    """Whether a folder is meant as an exported model rather than a run folder: it has no
    checkpoints/ but has a card, weights, a config or a pickle (then refused on opening)."""
    if not path.is_dir() or (path / "checkpoints").is_dir():
        return False
    return any((path / f).is_file() for f in (CARD, WEIGHTS, CONFIG)) or bool(pickles_in(path))


def pickles_in(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file())


def check_no_pickles(path: Path, what: str) -> None:
    found = pickles_in(path)
    if found:
        raise CvaekitError(f"'{what}' holds '{found[0].relative_to(path)}', a pickle, where weights go; cvaekit "
                           f"loads only safetensors, since a pickle can run code when loaded. Refused.")


def front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a model card ({} when it has none)."""
    if not text.startswith("---"):
        return {}
    head = text[3:].split("\n---", 1)[0]
    try:
        data = yaml.safe_load(head)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def check_card(path: Path, what: str) -> None:
    card = path / CARD
    if not card.is_file():
        return
    library = front_matter(card.read_text(errors="replace")).get("library_name")
    if library is not None and library != LIBRARY:
        raise CvaekitError(f"'{what}' is a model for the library '{library}' (its model card says so), "
                           f"not for cvaekit. Refused.")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CvaekitError(f"'{path}' is not a readable safetensors file ({exc}). Refused.") from None


def tensors_only(state: dict[str, Any], what: str) -> dict[str, torch.Tensor]:
    """A state_dict as contiguous tensors of their own (safetensors holds no shared memory)."""
    others = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise CvaekitError(f"The {what} keeps state that is not a tensor ({', '.join(others[:3])}); "
                           f"safetensors holds tensors only, so it cannot be exported.")
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def check_weights(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], file: str, what: str) -> None:
    """Refuse weights whose names or shapes are not those of the model the recipe builds."""
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    wrong = [k for k in sorted(set(saved) & set(expected)) if tuple(saved[k].shape) != tuple(expected[k].shape)]
    if not (missing or extra or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (first '{missing[0]}')")
    if extra:
        parts.append(f"{len(extra)} the model has no place for (first '{extra[0]}')")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} of another shape (first '{k}': {tuple(saved[k].shape)} where the "
                     f"recipe's model has {tuple(expected[k].shape)})")
    raise CvaekitError(f"'{what}': {file} does not match the model its recipe builds: {'; '.join(parts)}. Refused.")


def write_exported(folder: str | os.PathLike, *, weights: dict, prior: dict | None, recipe_text: str,
                   config: dict, card: str, grid: Path | None, records: list[dict] = ()) -> Path:
    """Write an exported folder whole or not at all: into a temporary folder beside it, then
    renamed. A folder already there is replaced only when it is an earlier export."""
    from safetensors.torch import save_file

    folder = check_export_folder(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _make_folder(tmp, folder)
        meta = {"format": "pt", "library": LIBRARY, "cvaekit_format": str(FORMAT)}
        save_file(weights, tmp / WEIGHTS, metadata=meta)
        if prior is not None:
            save_file(prior, tmp / PRIOR, metadata=meta)
        (tmp / RECIPE).write_text(recipe_text)
        (tmp / CONFIG).write_text(json.dumps({"library_name": LIBRARY, "format": FORMAT, **config}, indent=2) + "\n")
        (tmp / CARD).write_text(card)
        if grid is not None:
            shutil.copyfile(grid, tmp / GRID)
        if records:
            (tmp / METRICS).write_text("".join(json.dumps(r) + "\n" for r in records))
        for path in tmp.iterdir():
            path.chmod(0o644)  # as any file written here (safetensors writes its own owner-only)
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def check_export_folder(folder: str | os.PathLike) -> Path:
    """`folder` as a place to write an export (new, or an earlier export to replace), its
    parent made; checked before any work, so a wrong path costs nothing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CvaekitError(f"'{folder}' is a file; an export is a folder. Name a new folder.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG).is_file():
        raise CvaekitError(f"'{folder}' exists and is not an exported model; choose a new folder.")
    _make_folder(folder.parent, folder, exist_ok=True)
    return folder


def _make_folder(path: Path, folder: Path, exist_ok: bool = False) -> None:
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except OSError as exc:
        blocked = next((p for p in (path, *path.parents) if p.exists()), path)
        reason = f"'{blocked}' is a file" if not blocked.is_dir() else f"making '{path}' failed ({exc.strerror or exc})"
        raise CvaekitError(f"Cannot write the export '{folder}': {reason}. Name a folder you can write to.") from None


def replace_folder(new: Path, folder: Path) -> None:
    """Put `new` where `folder` is, the old one removed only once the new one is in place."""
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(new, folder)
    shutil.rmtree(old, ignore_errors=True)


def unpack_to_run(model: ExportedModel, dest: Path, recipe_text: str) -> Path:
    """A run folder made from an exported model, for what writes into a run (`evaluate`,
    `fit-prior`): its recipe, its checkpoint as `epoch-NNNN.pt` (no optimizer state, so it
    is not resumed), its fitted prior and its metrics. The same weights, the same images."""
    from cvaekit.store.checkpoint import write_fitted_prior, write_training_checkpoint
    from cvaekit.store.runs import RunDir

    config, run = model.config, RunDir(Path(dest))
    epoch = int(config["epoch"])
    run.path.mkdir(parents=True, exist_ok=True)
    run.recipe_file.write_text(recipe_text)
    write_training_checkpoint(run.checkpoint(epoch), model=model.weights(), optimizer={}, epoch=epoch,
                              step=int(config.get("step", 0)), rng={}, data_info=config["data"],
                              recipe=yaml.safe_load(recipe_text))
    if model.has_prior:
        prior = config["fitted_prior"]
        write_fitted_prior(run.fitted_prior(epoch), name=prior["name"], params=prior["params"],
                           state=model.prior_weights(), epoch=epoch, fitted_to=str(model.path),
                           before={}, after={})
    if (model.path / METRICS).is_file():
        shutil.copyfile(model.path / METRICS, run.metrics_file)
    (run.path / "exported_from.txt").write_text(f"{config.get('source', model.path)}\n")
    return run.path
