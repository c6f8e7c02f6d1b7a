"""Recipe to parts: the one place that turns a recipe into its data set, model, prior and
metrics (through the registry), and a run folder, an exported folder or a hub id back into
its trained model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from cvaekit.core.data import DataInfo, DataSource
from cvaekit.core.latents import pairing_problem
from cvaekit.core.likelihood import CONTRACT as LIKELIHOOD_CONTRACT
from cvaekit.core.likelihood import Bernoulli
from cvaekit.core.model import CVAE, InjectionStack, attach_prior
from cvaekit.core.prior import check_prior_interface
from cvaekit.errors import ComponentError, CvaekitError, RecipeError
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import (
    ComponentSpec,
    InjectionSpec,
    ModelConfig,
    Recipe,
    load_recipe,
)
from cvaekit.recipe.files import apply_overrides, read_yaml
from cvaekit.store.checkpoint import read_fitted_prior, read_training_checkpoint, weights_in_use
from cvaekit.store.exported import (
    PRIOR,
    WEIGHTS,
    ExportedModel,
    check_weights,
    looks_exported,
    unpack_to_run,
)
from cvaekit.store.hub import download, is_hub_id
from cvaekit.store.runs import RunDir, new_folder


def build_dataset(recipe: Recipe, registry: Registry) -> DataSource:
    """The recipe's data set (`data`)."""
    return registry.build("dataset", recipe.data.name, recipe.data.params)


def build_conditioner(config: ModelConfig, data_info: DataInfo, registry: Registry) -> nn.Module:
    """The recipe's conditioner (`model.conditioner`), for the data it will read."""
    return registry.build("conditioner", config.conditioner.name, config.conditioner.params, data=data_info)


def build_metrics(specs: list[ComponentSpec] | list[tuple[str, dict[str, Any]]], registry: Registry) -> list[Any]:
    """The metrics named by `specs` (recipe entries, or (name, params) pairs)."""
    pairs = [(s.name, s.params) if isinstance(s, ComponentSpec) else s for s in specs]
    return [registry.build("metric", name, params) for name, params in pairs]


def sample_prompts(recipe: Recipe, data: DataSource) -> list[str]:
    """The texts of a run's sample grids: the recipe's `eval.conditions`, else the data's own."""
    return list(recipe.eval.conditions or data.default_prompts())


@dataclass
class InjectionPlan:
    """The injections a recipe places in one network. The network calls `at(stage, channels)`
    at each point where it accepts one (0 = its input) and uses the returned stack."""

    specs: list[InjectionSpec]
    cond_dim: int
    registry: Registry
    net: str = "encoder"
    offered: list[int] = field(default_factory=list)

    def at(self, stage: int, channels: int) -> InjectionStack:
        self.offered.append(stage)
        modules = []
        for spec in (s for s in self.specs if s.at == stage):
            inj = self.registry.build("injection", spec.name, spec.params,
                                      cond_dim=self.cond_dim, channels=channels)
            channels = inj.out_channels
            modules.append(inj)
        return InjectionStack(modules, channels)

    def check_placed(self, network: str) -> None:
        """Every injection must land on a stage the network offered."""
        for spec in self.specs:
            if spec.at not in self.offered:
                where = (f"stages {sorted(set(self.offered))}" if self.offered
                         else "no injections")
                raise RecipeError(
                    f"Injection '{spec.name}' is placed at stage {spec.at} of the {self.net}, "
                    f"but {self.net} '{network}' takes {where}.")


def build_model(config: ModelConfig, data_info: DataInfo, registry: Registry,
                conditioner: nn.Module | None = None) -> CVAE:
    """The CVAE a recipe's `model` section describes; `conditioner`, when given, is one
    already built from it (the memory guard builds the rest on the meta device around it).
    The decoder outputs what the likelihood reads: `image_shape` is (its channels, H, W)."""
    if conditioner is None:
        conditioner = build_conditioner(config, data_info, registry)
    cond_dim = conditioner.dim
    image_shape = tuple(data_info.image_shape)
    likelihood = build_likelihood(config, image_shape, registry)
    out_shape = (likelihood.out_channels(image_shape[0]), *image_shape[1:])
    nets = {}
    for net, shape in (("encoder", image_shape), ("decoder", out_shape)):
        spec = getattr(config, net)
        plan = InjectionPlan([s for s in config.injections if s.net == net], cond_dim, registry, net)
        nets[net] = registry.build(net, spec.name, spec.params, image_shape=shape,
                                   cond_dim=cond_dim, latent_dim=config.latent_dim, injections=plan)
        plan.check_placed(spec.name)
    _check_pairing(config, nets["encoder"], nets["decoder"])
    model = CVAE(conditioner, nets["encoder"], nets["decoder"], config.latent_dim, data_info, likelihood=likelihood)
    if config.prior is not None:
        model.prior = build_prior(config.prior.name, config.prior.params, cond_dim, model.prior_dim,
                                  registry, model)
    return model


def _check_pairing(config: ModelConfig, encoder: nn.Module, decoder: nn.Module) -> None:
    """A top-down decoder needs an encoder that gives feature maps, and the other way round
    (core/hierarchy.py). A `model.prior` there is the top group's, in place of the decoder's own."""
    problem = pairing_problem(encoder, decoder)
    if problem:
        raise RecipeError(f"Decoder '{config.decoder.name}' {problem} (encoder '{config.encoder.name}'): pair "
                          f"hierarchical networks with each other (encoder: ladder, decoder: ladder).")


def build_likelihood(config: ModelConfig, image_shape: tuple[int, ...], registry: Registry) -> nn.Module:
    """The recipe's likelihood (`model.likelihood`), checked to give what the engine calls;
    the study's Bernoulli when the recipe names none."""
    if config.likelihood is None:
        return Bernoulli()
    likelihood = registry.build("likelihood", config.likelihood.name, config.likelihood.params,
                                image_shape=image_shape)
    missing = [m for m in ("out_channels", "log_prob", "sample", "mean") if not callable(getattr(likelihood, m, None))]
    if missing or not hasattr(likelihood, "bits"):
        raise RecipeError(f"Likelihood '{config.likelihood.name}' lacks {', '.join(missing) or 'bits'}: {LIKELIHOOD_CONTRACT}.")
    return likelihood


def build_prior(name: str, params: dict, cond_dim: int, latent_dim: int, registry: Registry,
                model: CVAE | None = None) -> nn.Module:
    """The named prior component, checked to give `log_prob` and `sample`, and attached to
    `model` when given (its `attach(model)` hook, where it has one: a prior that needs the
    model's encoder, as a VampPrior does)."""
    prior = registry.build("prior", name, params, cond_dim=cond_dim, latent_dim=latent_dim)
    check_prior_interface(prior, name)
    if model is not None:
        try:
            attach_prior(prior, model)
        except CvaekitError:
            raise
        except Exception as exc:
            raise ComponentError(f"The prior '{name}' (from {registry.get('prior', name).origin}) raised in "
                                 f"attach(model): {type(exc).__name__}: {exc}") from exc
    return prior


@dataclass
class TrainedRun:
    """A run's recipe and model, loaded from one of its checkpoints (or an exported model)."""

    run: RunDir  # an exported model's folder, read like a run's (recipe.yaml, metrics.jsonl)
    recipe: Recipe
    model: CVAE
    epoch: int
    checkpoint: Path
    fitted_prior: Path | None = None  # the prior fitted afterwards (`cvaekit fit-prior`), if one is used
    exported: ExportedModel | None = None  # set when loaded from an exported folder or a hub id


def open_model(source: str | os.PathLike) -> RunDir | ExportedModel:
    """A run folder, an exported folder, or a hub id (`user/name[@revision]`: its folder in
    the Hugging Face cache, downloaded there first when online)."""
    path = Path(source)
    if looks_exported(path):
        return ExportedModel.open(path)
    if path.is_dir() or not is_hub_id(str(source)):
        return RunDir.open(path)
    return ExportedModel.open(download(str(source)), name=str(source))


def load_run(path: str | os.PathLike, checkpoint: str | None = None,
             registry: Registry | None = None, device: str | torch.device = "cpu",
             fitted_prior: bool = True, text_encoder: str | None = None) -> TrainedRun:
    """Rebuild a model from its recipe and load its weights (no data set needed): from a
    run folder's checkpoint, an exported folder or a hub id, the same model either way.

    A prior that `cvaekit fit-prior` fitted to this checkpoint replaces the recipe's own
    unless `fitted_prior` is False. `text_encoder`: a local path for the conditioner's
    pretrained text encoder (its `model`), in place of the one the recipe names."""
    registry = registry or get_registry()
    source = open_model(path)
    if isinstance(source, ExportedModel):
        return _load_exported(source, str(path), checkpoint, registry, device, fitted_prior, text_encoder)
    run = source
    recipe = load_recipe(read_yaml(run.recipe_file), text_encoder_override(text_encoder), registry=registry)
    ckpt_path = run.resolve_checkpoint(checkpoint)
    state = read_training_checkpoint(ckpt_path)
    model = build_model(recipe.model, DataInfo.from_dict(state["data_info"]), registry)
    model.load_state_dict(weights_in_use(state))
    fitted = run.fitted_prior(state["epoch"])
    if not (fitted_prior and fitted.is_file()):
        return TrainedRun(run, recipe, model.to(device).eval(), state["epoch"], ckpt_path)
    saved = read_fitted_prior(fitted)
    model.prior = build_prior(saved["prior"]["name"], saved["prior"]["params"], model.conditioner.dim,
                              model.prior_dim, registry, model)
    model.prior.load_state_dict(saved["state"])
    return TrainedRun(run, recipe, model.to(device).eval(), state["epoch"], ckpt_path, fitted)


def text_encoder_override(text_encoder: str | None) -> list[str]:
    return [f"model.conditioner.model={text_encoder}"] if text_encoder else []


def _load_exported(exported: ExportedModel, name: str, checkpoint: str | None, registry: Registry,
                   device: str | torch.device, fitted_prior: bool, text_encoder: str | None) -> TrainedRun:
    config = exported.config
    epoch = int(config["epoch"])
    if checkpoint not in (None, "last", str(epoch)):
        raise CvaekitError(f"'{name}' is an exported model of epoch {epoch}; it holds no checkpoint "
                           f"'{checkpoint}' (leave --checkpoint out).")
    check_installed(config, registry, name)
    recipe = load_recipe(read_yaml(exported.recipe_file), text_encoder_override(text_encoder), registry=registry)
    try:
        model = build_model(recipe.model, DataInfo.from_dict(config["data"]), registry)
    except CvaekitError as exc:
        encoder = config.get("text_encoder")
        if not encoder or text_encoder:
            raise
        raise CvaekitError(f"{exc} This model's text encoder is '{encoder}'"
                           f"{' (a hub id)' if is_hub_id(encoder) else ''}; give a local copy of it with "
                           f"--text-encoder PATH (Python: text_encoder=PATH).") from None
    weights = exported.weights()
    check_weights(weights, model.state_dict(), WEIGHTS, name)
    model.load_state_dict(weights)
    fitted = None
    if fitted_prior and exported.has_prior:
        spec = config["fitted_prior"]
        model.prior = build_prior(spec["name"], spec["params"], model.conditioner.dim, model.prior_dim,
                                  registry, model)
        prior = exported.prior_weights()
        check_weights(prior, model.prior.state_dict(), PRIOR, name)
        model.prior.load_state_dict(prior)
        fitted = exported.path / PRIOR
    return TrainedRun(RunDir(exported.path), recipe, model.to(device).eval(), epoch, exported.path / WEIGHTS,
                      fitted, exported)


def check_installed(config: dict, registry: Registry, name: str) -> None:
    """Every component the exported model's recipe names is installed; the package that
    provides a missing one is named (from the config, which the card shows too)."""
    for item in config.get("components", []):
        if (item["kind"], item["name"]) in registry.components:
            continue
        package = item.get("package")
        where = (f"; it comes from the package '{package}' ({item.get('origin')}): pip install {package}"
                 if package else "; no package was named for it when the model was exported")
        raise ComponentError(f"'{name}' needs the {item['kind']} '{item['name']}', which is not installed{where}.")


def local_run(source: str | os.PathLike, into: str | os.PathLike | None = None,
              text_encoder: str | None = None) -> Path:
    """A run folder to write into: `source` itself when it is one; for an exported folder or
    a hub id, a new run folder made from it (`into`, default runs/<name>-<timestamp>)."""
    found = open_model(source)
    if isinstance(found, RunDir):
        if text_encoder:
            raise CvaekitError("--text-encoder is for exported models; a run folder's recipe names its own.")
        return found.path
    data = apply_overrides(read_yaml(found.recipe_file), text_encoder_override(text_encoder))
    if into is not None and Path(into).exists() and any(Path(into).iterdir()):
        raise CvaekitError(f"'{into}' exists and is not empty; choose a new folder for the local copy.")
    dest = Path(into) if into is not None else new_folder(Path("runs"), str(data.get("name", "model")))
    return unpack_to_run(found, dest, yaml.safe_dump(data, sort_keys=False))
