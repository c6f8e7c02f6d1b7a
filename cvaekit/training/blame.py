"""Naming the component behind a failure at the first training step.

A plugin that misbehaves inside `cvaekit run` would otherwise end in a long traceback deep in
torch (`mat1 and mat2 shapes cannot be multiplied`) that never says which part is at fault.
For the first step, every part of the model is watched: the conditioner's output must be
`[B, dim]` or `[B, T, dim]` for the `dim` it declares, and an exception raised inside a
part becomes one ComponentError naming its kind, name and origin (the original error stays
chained, for `--debug`).
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


@contextmanager
def watched(parts: dict[nn.Module, Part], conditioner: nn.Module):
    """Inside, a part that raises (or a conditioner of the wrong shape) is a ComponentError."""
    inside: list[Part] = []
    hooks = []
    def enter(part):
        return lambda module, args: inside.append(part)  # a hook returning None changes nothing

    def leave(module, args, out):
        inside.pop()

    for module, part in parts.items():
        hooks.append(module.register_forward_pre_hook(enter(part)))
        hooks.append(module.register_forward_hook(leave))
    hooks.append(conditioner.register_forward_hook(
        lambda m, args, out: _check_condition(parts[conditioner], m, args, out)))
    try:
        yield
    except CvaekitError:
        raise
    except Exception as exc:
        if not inside:
            raise
        raise ComponentError(f"The {inside[-1]} raised at the first training step: "
                             f"{type(exc).__name__}: {exc} (--debug shows the whole traceback)") from exc
    finally:
        for h in hooks:
            h.remove()


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
