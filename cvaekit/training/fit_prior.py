"""`cvaekit fit-prior`: fit a prior to a trained run's codes, the VAE frozen (a two-stage prior).

A CVAE trained with N(0, I) (the study's) or one Gaussian per condition encodes the images of
one caption into several clusters (one per layout or style), and samples from a blob that
covers them all fall between clusters. Fitting an expressive prior (`flow`, `mixture`) to the
encoder's codes afterwards puts samples where the decoder has seen codes, without training
the model again. The fitted prior is saved beside the checkpoint it was fitted to
(`checkpoints/epoch-NNNN.prior.pt`), and `generate`, `evaluate` and `serve` use it from then on.
Under torchrun, or in the processes of `train.processes`, each process fits on its share of the
codes and the gradients are averaged, as in training; process 0 measures and saves.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from cvaekit.assembly import (
    build_dataset,
    build_metrics,
    build_prior,
    load_run,
    local_run,
    sample_prompts,
)
from cvaekit.core.model import CVAE
from cvaekit.core.sampling import sample_rows
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.evaluation.figures import labelled_grid
from cvaekit.evaluation.tables import metrics_table
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import (
    FIT_PRIOR_DEFAULTS,
    ComponentSpec,
    FitPriorConfig,
    apply_overrides,
    component_spec,
)
from cvaekit.runtime.device import Distributed, resolve_device
from cvaekit.runtime.interrupts import Interrupts
from cvaekit.store.checkpoint import write_fitted_prior
from cvaekit.store.runs import RunDir
from cvaekit.training.blame import Part, watched
from cvaekit.training.codes import Codes, encode, hold_out, to_device

console = Console(stderr=True)


@dataclass
class FitResult:
    run: Path
    prior: str
    path: Path  # the saved prior
    before: dict[str, float]
    after: dict[str, float]
    seconds: float
    figure: Path | None = None


def prior_spec(recipe_dict: dict[str, Any], name: str, overrides: list[str], registry: Registry):
    """The prior `name` with `overrides` (`key=value`, the prior's own keys, as `--set` gives
    them), validated like a recipe's `model.prior`, so a bad key or value is named as it was
    typed (`components`, not `model.prior.components`) with the valid choices."""
    where = f"fit-prior --prior {name}"
    try:
        registry.get("prior", name)
    except CvaekitError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    values: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise RecipeError(f"{where}: --set '{item}' must look like key=value, e.g. --set transforms=4.")
        values.update(apply_overrides({}, [item]))  # the value read as YAML
    try:
        return component_spec(ComponentSpec, {**values, "name": name}, "", "prior", registry)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def fit_prior(run: str | os.PathLike, prior: str = "flow", overrides: list[str] = (), *, checkpoint: str | None = None,
              epochs: int = FIT_PRIOR_DEFAULTS["epochs"], lr: float = FIT_PRIOR_DEFAULTS["lr"],
              batch_size: int = FIT_PRIOR_DEFAULTS["batch_size"], draws: int = FIT_PRIOR_DEFAULTS["draws"],
              registry: Registry | None = None, device: str = "auto", progress: bool = True,
              measure: bool = True, spec: ComponentSpec | None = None, into: str | os.PathLike | None = None,
              text_encoder: str | None = None) -> FitResult | None:
    """Fit the prior `prior` (with `overrides`, or as `spec` when given) to the codes of a
    trained run's training images, the rest of the model frozen; save it beside the
    checkpoint; measure the recipe's metrics before and after. With several processes (torchrun),
    each fits on its share and process 0 saves and returns the result (the others None).
    An exported model or a hub id is first copied into a local run folder (`into`, default
    runs/<name>-<timestamp>), and the prior is saved there."""
    from cvaekit.plugins.loading import get_registry

    registry = registry or get_registry()
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("draws", draws)):
        if not isinstance(value, int) or value < 1:
            raise RecipeError(f"fit-prior: '{key}' must be a whole number of at least 1, got {value!r}.")
    if not (lr > 0 and math.isfinite(lr)):
        raise RecipeError(f"fit-prior: 'lr' must be a number above 0, got {lr}.")
    start = time.perf_counter()
    ddp = Distributed(resolve_device(device, "--device"))
    run = local_run(run, into, text_encoder)
    trained = load_run(run, checkpoint, registry, ddp.device, fitted_prior=False)
    recipe, model = trained.recipe, trained.model
    spec = spec or prior_spec(recipe.to_dict(), prior, list(overrides), registry)
    data = build_dataset(recipe, registry)
    train_split, test = data.train.head(recipe.train.limit), data.test.head(recipe.eval.limit)
    metrics = build_metrics(recipe.eval.metrics, registry) if measure and ddp.main else []
    before = (trained.run.metrics_at(trained.epoch)
              or run_metrics(metrics, EvalContext(model, data, test, seed=recipe.seed))) if metrics else {}

    torch.manual_seed(recipe.seed)
    fit_split, check_split = hold_out(train_split)  # the fit never picks its weights on the test images
    seed = recipe.seed + 2 * ddp.rank  # each process its own draws
    codes = encode(model, fit_split.part(ddp.rank, ddp.world), draws, 256, seed)
    held_out = encode(model, check_split.part(ddp.rank, ddp.world), 1, 256, seed + 1)
    new = build_prior(spec.name, spec.params, model.conditioner.dim, model.prior_dim, registry, model).to(model.device)
    ddp.same_weights(new)
    _trial(new, Part("prior", spec.name, registry.get("prior", spec.name).origin), codes)
    best = _fit(new, codes, held_out, epochs, lr, max(1, batch_size // ddp.world), seed, progress and ddp.main, ddp)
    new.load_state_dict(best)
    new.eval()
    if not ddp.main:
        return None

    model.prior = new
    after = run_metrics(metrics, EvalContext(model, data, test, seed=recipe.seed)) if metrics else {}
    path = trained.run.fitted_prior(trained.epoch)
    write_fitted_prior(path, name=spec.name, params=spec.params, state=new.state_dict(), epoch=trained.epoch,
                       fitted_to=trained.checkpoint.name, before=before, after=after)
    figure = _sample_grid(model, data, recipe, trained.run, trained.epoch, spec.name)
    return FitResult(trained.run.path, spec.name, path, before, after, time.perf_counter() - start, figure)


def before_after_table(result: FitResult):
    """The recipe's metrics as trained and with the fitted prior, as a rich table."""
    rows = [{"prior": "as trained", **result.before}, {"prior": f"fitted {result.prior}", **result.after}]
    return metrics_table(rows, ["prior"], list(result.after), f"{result.run.name}: before and after fit-prior")


def second_stage(run: RunDir, config: FitPriorConfig, device: str, progress: bool) -> FitResult | None:
    """A recipe's `fit_prior` stage for the run's last checkpoint, unless it was fitted already;
    its before and after figures go into the run's metrics as a `fit_prior` record."""
    state_epoch = max((e for e, _ in run.checkpoints()), default=None)
    if state_epoch is None or run.fitted_prior(state_epoch).is_file():
        return None
    result = fit_prior(run.path, config.prior.name, spec=config.prior, epochs=config.epochs, lr=config.lr,
                       batch_size=config.batch_size, draws=config.draws, device=device, progress=progress)
    if result is None:  # a process other than 0 of several, which fitted its share
        return None
    run.log({"kind": "fit_prior", "epoch": state_epoch, "prior": result.prior, "before": result.before,
             "after": result.after, "seconds": result.seconds, "checkpoint": str(result.path.relative_to(run.path))})
    Console().print(before_after_table(result))
    Console().print(f"Fitted the {result.prior} prior in {result.seconds:.0f} s (the recipe's fit_prior stage); "
                    f"generate, evaluate and serve sample from it.", highlight=False)
    return result


def _trial(prior: torch.nn.Module, part: Part, codes: Codes, rows: int = 16) -> None:
    """`log_prob` and `sample` once on a few codes before the fit, so a prior that raises in
    either is named (kind, name, origin) instead of ending in a long traceback."""
    device = next(iter(prior.parameters()), torch.empty(0)).device
    idx = torch.arange(min(rows, len(codes)))
    cond = to_device(codes.cond.index(idx), device)
    with watched({prior: part}, where="the first step of fit-prior"), torch.no_grad(), \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        prior.log_prob(codes.mu[idx].to(device), cond)
        prior.sample(cond, generator=torch.Generator().manual_seed(0))


def _fit(prior: torch.nn.Module, codes: Codes, held_out: Codes, epochs: int, lr: float, batch_size: int,
         seed: int, progress: bool, ddp: Distributed) -> dict[str, torch.Tensor]:
    """Maximum likelihood on fresh posterior draws; the weights with the best log-likelihood
    on `held_out` (training images the fit does not see) are kept. With several processes
    each steps on its own codes with the gradients averaged, and they agree on the held-out
    figure, on a diverged loss and on a Ctrl-C (all stop after the same step)."""
    device = next(prior.parameters()).device
    opt = torch.optim.Adam(prior.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))  # one kernel per step
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    held_z = held_out.draw(torch.arange(len(held_out)), gen).to(device)
    held_c = to_device(held_out.cond, device)
    best, best_nll = None, float("inf")
    columns = [TextColumn("fit-prior epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
               TaskProgressColumn(), TextColumn("held-out -log p(z|c) {task.fields[nll]:.3f}"), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not progress) as bar, \
            Interrupts(defer=ddp.world > 1, distributed=True) as interrupts:
        task = bar.add_task("fit", total=epochs, epoch=0, epochs=epochs, nll=float("nan"))
        for epoch in range(1, epochs + 1):
            prior.train()
            interrupts.in_steps = True
            for idx in torch.randperm(len(codes), generator=gen).split(batch_size):
                z = codes.draw(idx, gen).to(device)
                loss = -prior.log_prob(z, to_device(codes.cond.index(idx), device)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                ddp.average_gradients(prior)
                total, stops = ddp.sum([loss.item(), float(interrupts.requested)])
                if not math.isfinite(total):
                    raise CvaekitError(f"fit-prior: the loss became {total / ddp.world} in epoch {epoch}. "
                                       f"Lower --lr (now {lr}).")
                if stops:
                    raise KeyboardInterrupt
                torch.nn.utils.clip_grad_norm_(prior.parameters(), 10.0)
                opt.step()
            interrupts.in_steps = False
            sched.step()
            prior.eval()
            with torch.no_grad():
                total, count = ddp.sum([-prior.log_prob(held_z, held_c).sum().item(), len(held_z)])
            nll = total / count
            if not math.isfinite(nll):  # the weights diverged in the last step
                raise CvaekitError(f"fit-prior: the held-out -log p(z|c) became {nll} in epoch {epoch}. "
                                   f"Lower --lr (now {lr}).")
            if nll < best_nll:
                best_nll = nll
                best = {k: v.detach().clone() for k, v in prior.state_dict().items()}
            bar.update(task, advance=1, epoch=epoch, nll=nll)
    return best


def _sample_grid(model: CVAE, data, recipe, run: RunDir, epoch: int, prior: str) -> Path:
    """The run's sample grid for this checkpoint (its prompts, its seed), from the fitted prior."""
    prompts = sample_prompts(recipe, data)
    rows = sample_rows(model, prompts, recipe.eval.samples_per_condition, seed=recipe.seed)
    return labelled_grid(rows, prompts, run.fitted_samples(epoch, prior), title=f"{recipe.name}, epoch {epoch}, fitted {prior} prior")
