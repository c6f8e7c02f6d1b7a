"""Naming the component behind a failure at the first training step.

A plugin that misbehaves inside `cvaekit run` would otherwise end in a long traceback deep in
torch (`mat1 and mat2 shapes cannot be multiplied`) that never says which part is at fault.
For the first step, every part of the model is watched: the conditioner's output must be
`[B, dim]` or `[B, T, dim]` for the `dim` it declares, and an exception raised inside a
part (in its forward, or in a prior's `log_prob`, `sample` or `gaussian`, which are not
forward calls) becomes one ComponentError naming its kind, name and origin (the original
error stays chained, for `--debug`). The first step also draws z from the prior once
(`trial_draw`), so a prior whose `sample` fails is named before an epoch is spent.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import ComponentError, CvaekitError
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import Recipe


@dataclass(frozen=True)
class Part:
    kind: str
    name: str
    origin: str

    def __str__(self) -> str:
        return f"{self.kind} '{self.name}' (from {self.origin})"


def parts_of(model: nn.Module, recipe: Recipe, registry: Registry) -> dict[nn.Module, Part]:
    """Each module of `model` that a recipe component built, with what built it."""
    def part(kind: str, name: str) -> Part:
        return Part(kind, name, registry.get(kind, name).origin)

    found = {model.conditioner: part("conditioner", recipe.model.conditioner.name)}
    for kind in ("encoder", "decoder"):
        net = getattr(model, kind)
        found[net] = part(kind, getattr(recipe.model, kind).name)
        classes = {registry.get("injection", s.name).factory: s.name
                   for s in recipe.model.injections if s.net == kind}
        for m in net.modules():
            if type(m) in classes:
                found[m] = part("injection", classes[type(m)])
    if recipe.model.prior is not None and model.prior is not None:
        found[model.prior] = part("prior", recipe.model.prior.name)
    return found


PRIOR_METHODS = ("log_prob", "sample", "gaussian")  # called directly, not through forward


@contextmanager
def watched(parts: dict[nn.Module, Part], conditioner: nn.Module | None = None,
            where: str = "the first training step"):
    """Inside, a part that raises (or a conditioner of the wrong shape) is a ComponentError."""
    inside: list[str] = []
    hooks = []

    def enter(part):
        return lambda module, args: inside.append(str(part))  # a hook returning None changes nothing

    def leave(module, args, out):
        inside.pop()

    for module, part in parts.items():
        hooks.append(module.register_forward_pre_hook(enter(part)))
        hooks.append(module.register_forward_hook(leave))
    if conditioner is not None:
        hooks.append(conditioner.register_forward_hook(
            lambda m, args, out: _check_condition(parts[conditioner], m, args, out)))
    patched = [_watch_method(m, name, f"{part} raised in {name}", inside)
               for m, part in parts.items() if part.kind == "prior" for name in PRIOR_METHODS
               if callable(getattr(m, name, None))]
    try:
        yield
    except CvaekitError:
        raise
    except Exception as exc:
        if not inside:
            raise
        said = inside[-1] if " raised in " in inside[-1] else f"{inside[-1]} raised"
        raise ComponentError(f"The {said} at {where}: {type(exc).__name__}: {exc} "
                             f"(--debug shows the whole traceback)") from exc
    finally:
        for h in hooks:
            h.remove()
        for module, name in patched:
            delattr(module, name)


def _watch_method(module: nn.Module, name: str, label: str, inside: list[str]) -> tuple[nn.Module, str]:
    """Shadow `module.name` with a copy that marks `label` while it runs (left marked if it raises)."""
    method = getattr(module, name)

    def marked(*args, **kwargs):
        inside.append(label)
        out = method(*args, **kwargs)
        inside.pop()
        return out

    object.__setattr__(module, name, marked)
    return module, name


def trial_draw(model: nn.Module, raw) -> None:
    """One draw from the model's prior for the conditions `raw`, outside the training's random
    streams, so a prior whose `sample` fails fails at the first step (inside `watched`)."""
    if model.prior is None:
        return
    device = model.device
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model.prior.sample(model.condition(raw), generator=torch.Generator().manual_seed(0), temperature=1.0)


def _check_condition(part: Part, module: nn.Module, args, out) -> None:
    raw = args[0] if args else None
    batch = len(raw) if raw is not None and hasattr(raw, "__len__") else None
    dim = getattr(module, "dim", None)
    tensor = out.vector if isinstance(out, Condition) else out
    if not isinstance(tensor, torch.Tensor):
        raise ComponentError(f"The {part} returned {type(out).__name__}; a conditioner returns a "
                             f"tensor [B, dim], [B, T, dim] or a Condition.")
    shape = tuple(tensor.shape)
    ok = (tensor.dim() in (2, 3) and (batch is None or shape[0] == batch)
          and (dim is None or shape[-1] == dim))
    if not ok:
        raise ComponentError(
            f"The {part} gave a condition of shape {list(shape)} for a batch of {batch}, but it "
            f"declares dim {dim}: it must return [B, dim] = [{batch}, {dim}] or [B, T, dim].")
