"""The recipe reference in docs/recipes.md: every engine key and every registered component's
parameters, generated from the schema and the factories' signatures and docstrings.

Regenerate with: python -m cvaekit.recipe.reference docs/recipes.md
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
import typing
from pathlib import Path

from cvaekit import recipe as recipe_mod
from cvaekit.plugins.registry import Registry
from cvaekit.recipe.describe import REQUIRED, _read, summary_of, type_text, yaml_value
from cvaekit.recipe.schema import ComponentSpec, InjectionSpec, Recipe

# What each recipe key means, where recipe/schema.py has no comment beside the field.
KEY_HELP = {
    "Recipe.name": "Run name; the run folder is `<runs_dir>/<name>-<timestamp>`.",
    "Recipe.data": "The dataset component and its parameters.",
    "Recipe.model": "The CVAE: conditioner, encoder, decoder, injections, latent size.",
    "Recipe.seed": "Seeds the model's initialisation, the batch order and every metric.",
    "Recipe.runs_dir": "Folder that run folders are created in.",
    "Recipe.train": "How to train.",
    "Recipe.eval": "How each kept checkpoint is judged.",
    "Recipe.log": "Trackers the run also logs to.",
    "ModelConfig.conditioner": "Turns raw conditions (label ids or captions) into the condition vector/tokens.",
    "ModelConfig.encoder": "q(z | x, c): image and condition to mu and logvar.",
    "ModelConfig.decoder": "p(x | z, c): latent and condition to image logits.",
    "ModelConfig.latent_dim": "Size of the latent z.",
    "ModelConfig.injections": "Where and how the condition enters the networks, in order.",
    "ModelConfig.prior": "p(z | c), a `prior` component; null is N(0, I), the study's. `conditional` learns a Gaussian per condition, `mixture` several, `flow` a normalizing flow.",
    "InjectionSpec.at": "Stage of the network (0 = its input); each network says which stages it offers.",
    "InjectionSpec.net": "The network the injection is placed in.",
    "TrainConfig.epochs": "Passes over the (possibly limited) training split.",
    "TrainConfig.batch_size": "Images per optimizer step.",
    "TrainConfig.lr": "Adam learning rate.",
    "TrainConfig.weight_decay": "Adam weight decay.",
    "TrainConfig.kl_weight": "Weight of the KL term (1 = the ELBO; other values give a beta-VAE).",
    "TrainConfig.grad_clip": "Clip the gradient norm to this value before each step (null: no clipping).",
    "EvalConfig.metrics": "Metric components run at each kept checkpoint.",
    "EvalConfig.samples_per_condition": "Images per text in each checkpoint's sample grid.",
}


def _field_comments(cls: type) -> dict[str, str]:
    """The `# comment` beside each field in the dataclass's source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)}


def recipe_sections(cls: type = Recipe, path: str = "") -> list[tuple[str, type, list[dict[str, str]]]]:
    """(section path, dataclass, rows) for `cls` and every section inside it, depth first."""
    hints = typing.get_type_hints(cls, include_extras=True, localns=vars(recipe_mod))
    comments = _field_comments(cls)
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        if issubclass(cls, ComponentSpec) and f.name in ("name", "params"):
            continue
        hint = hints[f.name]
        if f.default is not dataclasses.MISSING:
            default = yaml_value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            made = f.default_factory()
            default = "see below" if dataclasses.is_dataclass(made) else yaml_value(made)
        else:
            default = "required"
        help_text = comments.get(f.name) or KEY_HELP.get(f"{cls.__name__}.{f.name}", "")
        rows.append({"key": f.name, "type": type_text(hint), "default": default, "help": help_text})
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
        optional = [a for a in typing.get_args(inner) if a is not type(None)]
        if typing.get_origin(inner) in (typing.Union, types.UnionType) and len(optional) == 1:
            inner = optional[0]  # an optional section (fit_prior: null) is documented like the others
        if dataclasses.is_dataclass(inner) and not issubclass(inner, ComponentSpec):
            nested.append((f"{path}{f.name}.", inner))
        elif inner is InjectionSpec:
            nested.append((f"{path}{f.name}[].", inner))
    out = [(path.rstrip(".") or "(top level)", cls, rows)]
    for sub_path, sub in nested:
        out += recipe_sections(sub, sub_path)
    return out


def _table(rows: list[dict[str, str]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |")
    return lines


def component_keys() -> list[str]:
    """Every key that names a component, as a recipe spells it: `data`, `model.prior`, ..."""
    keys = []
    for path, _, rows in recipe_sections():
        for r in rows:
            if "component" in str(r["type"]):
                where = r["key"] if path == "(top level)" else f"{path}.{r['key']}"
                keys.append(f"each entry of `{where}`" if str(r["type"]).startswith("list") else f"`{where}`")
    return keys


def recipe_reference(registry: Registry | None = None) -> str:
    """Markdown for every recipe key, and the parameters of every built-in component."""
    keys = component_keys()
    lines = ["## Recipe keys", "",
             f"A component key ({', '.join(keys[:-1])} and {keys[-1]}) takes a name, or a mapping with "
             f"`name` and that component's parameters (below).", ""]
    for path, _, rows in recipe_sections():
        lines += [f"### `{path}`", ""]
        lines += _table([{**r, "key": f"`{r['key']}`", "default": f"`{r['default']}`"
                          if r["default"] not in ("required", "see below") else r["default"]} for r in rows],
                        ["key", "type", "default", "help"])
        lines.append("")
    if registry is None:
        from cvaekit.plugins.loading import get_registry

        registry = get_registry()
    lines += ["## Built-in components", "",
              "Their parameters are recipe keys beside `name`. `cvaekit describe KIND NAME` prints "
              "the same for any installed component, plugins included.", ""]
    for comp in registry.of_kind():
        if comp.origin.split()[0] != "cvaekit":
            continue
        params, doc = _read(comp)
        lines += [f"### {comp.kind} `{comp.name}`", "", summary_of(comp, doc), ""]
        if params:
            lines += _table([{"key": f"`{p.name}`", "type": p.type,
                              "default": "required" if p.default is REQUIRED else f"`{yaml_value(p.default)}`",
                              "help": p.help} for p in params], ["key", "type", "default", "help"])
        else:
            lines.append("No parameters.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


BEGIN = "<!-- BEGIN GENERATED: python -m cvaekit.recipe.reference docs/recipes.md -->"
END = "<!-- END GENERATED -->"


def update_reference(path: str | Path, registry: Registry | None = None) -> bool:
    """Rewrite the generated part of `path` (between the BEGIN and END markers); True if it changed."""
    path = Path(path)
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{recipe_reference(registry)}\n{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # pragma: no cover - the docs' regeneration command
    for target in sys.argv[1:] or ["docs/recipes.md"]:
        print(f"{target}: {'updated' if update_reference(target) else 'up to date'}")
