"""What a component takes and how a recipe names it, and the recipe reference, from the code.

`describe_component` reads a component's factory: its recipe parameters (signature,
annotations, defaults, and the `name: text` lines of its docstring), where it came from,
and a recipe snippet placing it where its kind belongs. `recipe_reference` renders every
recipe key from the dataclasses in cvaekit/recipe.py, so docs/recipes.md cannot drift:
regenerate it with ``python -m cvaekit.describe docs/recipes.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from . import recipe as recipe_mod
from .errors import UnknownComponentError, choices_text, did_you_mean
from .recipe import AtLeast, ComponentSpec, InjectionSpec, Recipe, _resolve_annotation
from .registry import ENGINE_ARGS, KINDS, Component, Registry
from .static_signature import StaticFactory, Unresolved, read_factory, resolve_annotation

REQUIRED = "(required)"


@dataclass
class ParamInfo:
    name: str
    type: str
    default: Any  # REQUIRED when the recipe must give it
    help: str


@dataclass
class ComponentInfo:
    kind: str
    name: str
    origin: str
    summary: str
    doc: str
    params: list[ParamInfo]
    engine_args: list[str]
    snippet: str


# ---------------------------------------------------------------------------- types and values

def type_text(hint: Any) -> str:
    """An annotation as a reader of a recipe thinks of it: 'int', 'list of str', 'float or null'."""
    if hint is inspect.Parameter.empty or hint is Any:
        return "any"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        if "existing path" in args[1:]:
            return "path (must exist)"
        bounds = [str(a) for a in args[1:] if isinstance(a, AtLeast)]
        return type_text(args[0]) + "".join(f" ({b})" for b in bounds)
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts + (["null"] if type(None) in args else []))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict or hint is dict:
        return "mapping"
    if isinstance(hint, type) and issubclass(hint, ComponentSpec):
        return "component"
    if dataclasses.is_dataclass(hint):
        return "section"
    return {str: "string", bool: "true or false", int: "int", float: "number"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def yaml_value(value: Any) -> str:
    """A default as it would be written in a recipe (null, true, [2, 3], 0.001)."""
    if value is REQUIRED:
        return REQUIRED
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------- components

_PARAM_LINE = re.compile(r"^\s*(?:`(\w+)`|(\w+))\s*(?:\([^)]*\))?:\s+(\S.*)$", re.MULTILINE)


def _prose(doc: str, names: set[str]) -> str:
    """The docstring without its `name: text` parameter lines, which the parameter table shows."""
    kept = [ln for ln in doc.splitlines()
            if not ((m := _PARAM_LINE.match(ln)) and (m.group(1) or m.group(2)) in names)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _param_help(factory: Any) -> dict[str, str]:
    """`name: text` lines of the factory's docstrings (class, __init__, or function)."""
    docs = [inspect.getdoc(factory) or ""]
    if inspect.isclass(factory):
        docs.append(inspect.getdoc(factory.__init__) or "")
    return _help_lines(docs)


def _help_lines(docs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for doc in docs:
        for m in _PARAM_LINE.finditer(doc):
            found.setdefault(m.group(1) or m.group(2), m.group(3).strip())
    return found


def _read(comp: Component) -> tuple[list[ParamInfo], str]:
    """The recipe parameters and the docstring of a component's factory: from its source when
    that settles them (no import of its module, nor torch), else from the imported factory."""
    static = read_factory(comp.target) if isinstance(comp.target, str) else None
    if static is not None:
        try:
            return _static_params(comp, static), static.doc
        except Unresolved:
            pass
    helps = _param_help(comp.factory)
    out = []
    for pname, p in comp.params().items():
        hint = _resolve_annotation(comp.factory, pname, p.annotation)
        default = REQUIRED if p.default is inspect.Parameter.empty else p.default
        out.append(ParamInfo(pname, type_text(hint), default, helps.get(pname, "")))
    return out, inspect.getdoc(comp.factory) or ""


def _static_params(comp: Component, static: StaticFactory) -> list[ParamInfo]:
    helps = _help_lines([static.doc, static.init_doc])
    out = []
    for pname, p in static.parameters.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or pname in ENGINE_ARGS.get(comp.kind, ()):
            continue
        hint = resolve_annotation(p.annotation)
        default = REQUIRED if p.default is inspect.Parameter.empty else p.default
        out.append(ParamInfo(pname, type_text(hint), default, helps.get(pname, "")))
    return out


class _SnippetDumper(yaml.SafeDumper):
    """Block style, except lists of plain values: `ngrams: [2, 3, 4]`."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(v, (list, dict)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SnippetDumper.add_representer(list, _represent_list)


def summary_of(comp: Component, doc: str | None = None) -> str:
    """The first paragraph of the factory's docstring (the registry keeps its first sentence)."""
    doc = _read(comp)[1] if doc is None else doc
    return " ".join(doc.split("\n\n")[0].split()) or comp.summary


def snippet(kind: str, name: str, params: list[ParamInfo]) -> str:
    """YAML that uses the component, placed under the recipe key its kind belongs to."""
    entry: dict[str, Any] = {"name": name}
    if kind == "injection":
        entry.update(at=0, net="encoder")
    for p in params:
        entry[p.name] = f"<{p.type}>" if p.default is REQUIRED else _plain(p.default)
    placed = {"dataset": lambda e: {"data": e},
              "conditioner": lambda e: {"model": {"conditioner": e}},
              "encoder": lambda e: {"model": {"encoder": e}},
              "decoder": lambda e: {"model": {"decoder": e}},
              "prior": lambda e: {"model": {"prior": e}},
              "injection": lambda e: {"model": {"injections": [e]}},
              "metric": lambda e: {"eval": {"metrics": [e]}}}[kind](entry)
    text = yaml.dump(placed, Dumper=_SnippetDumper, sort_keys=False, default_flow_style=False)
    if kind == "injection":
        text = text.replace("net: encoder\n", "net: encoder  # at: stage (0 = the input); net: encoder or decoder\n", 1)
    return text


def describe_component(kind: str, name: str, registry: Registry | None = None) -> ComponentInfo:
    """Everything a recipe author needs about one component; a clear error for unknown ones."""
    if kind not in KINDS:
        raise UnknownComponentError(f"Unknown kind '{kind}'.{did_you_mean(kind, KINDS)} "
                                    f"Valid kinds: {choices_text(KINDS)}.")
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    comp = registry.get(kind, name)
    params, doc = _read(comp)
    doc = _prose(doc, {p.name for p in params})
    return ComponentInfo(kind, comp.name, comp.origin, comp.summary, doc, params,
                         list(ENGINE_ARGS.get(kind, ())), snippet(kind, comp.name, params))


def render_component(info: ComponentInfo) -> str:
    """The description as plain text, for the terminal."""
    lines = [f"{info.kind} '{info.name}'  (from {info.origin})", ""]
    body = info.doc or info.summary
    if body:
        lines += [body, ""]
    if info.params:
        lines.append("Parameters (recipe keys):")
        width = max(len(p.name) for p in info.params)
        twidth = max(len(p.type) for p in info.params)
        for p in info.params:
            default = "required" if p.default is REQUIRED else f"default {yaml_value(p.default)}"
            lines.append(f"  {p.name:<{width}}  {p.type:<{twidth}}  {default}")
            if p.help:
                lines.append(f"  {'':<{width}}  {p.help}")
    else:
        lines.append("Parameters: none.")
    if info.engine_args:
        lines.append(f"Given by the engine (not recipe keys): {', '.join(info.engine_args)}.")
    lines += ["", "Recipe snippet:", *("  " + ln for ln in info.snippet.rstrip().splitlines())]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- recipe reference

# What each recipe key means, where recipe.py has no comment beside the field.
KEY_HELP = {
    "Recipe.name": "Run name; the run folder is `<runs_dir>/<name>-<timestamp>`.",
    "Recipe.data": "The dataset component and its parameters.",
    "Recipe.model": "The CVAE: conditioner, encoder, decoder, injections, latent size.",
    "Recipe.seed": "Seeds the model's initialisation, the batch order and every metric.",
    "Recipe.runs_dir": "Folder that run folders are created in.",
    "Recipe.train": "How to train.",
    "Recipe.eval": "How each kept checkpoint is judged.",
    "Recipe.log": "Extra logging.",
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
    "LogConfig.tensorboard": "Also write TensorBoard event files into the run folder.",
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


def recipe_reference(registry: Registry | None = None) -> str:
    """Markdown for every recipe key, and the parameters of every built-in component."""
    lines = ["## Recipe keys", "",
             "A component key (`data`, `model.conditioner`, `model.encoder`, `model.decoder`, each "
             "entry of `model.injections` and `eval.metrics`) takes a name, or a mapping with `name` "
             "and that component's parameters (below).", ""]
    for path, _, rows in recipe_sections():
        lines += [f"### `{path}`", ""]
        lines += _table([{**r, "key": f"`{r['key']}`", "default": f"`{r['default']}`"
                          if r["default"] not in ("required", "see below") else r["default"]} for r in rows],
                        ["key", "type", "default", "help"])
        lines.append("")
    if registry is None:
        from .plugins import get_registry

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


BEGIN = "<!-- BEGIN GENERATED: python -m cvaekit.describe docs/recipes.md -->"
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
