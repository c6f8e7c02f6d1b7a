"""What a component takes and how a recipe names it, and the recipe reference, from the code.

`describe_component` reads a component's factory: its recipe parameters (signature,
annotations, defaults, and the `name: text` lines of its docstring), where it came from,
and a recipe snippet placing it where its kind belongs. `recipe_reference` renders every
recipe key from the dataclasses in cvaekit/recipe/schema.py, so docs/recipes.md cannot drift:
regenerate it with ``python -m cvaekit.recipe.reference docs/recipes.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml

from cvaekit.errors import UnknownComponentError, choices_text, did_you_mean
from cvaekit.plugins.registry import ENGINE_ARGS, KINDS, Component, Registry
from cvaekit.recipe.schema import ComponentSpec
from cvaekit.recipe.signatures import (
    StaticFactory,
    Unresolved,
    read_factory,
    resolve_annotation,
)
from cvaekit.recipe.types import Bound
from cvaekit.recipe.validation import resolve_annotation as _resolve_annotation

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
        bounds = [str(a) for a in args[1:] if isinstance(a, Bound)]
        return type_text(args[0]) + (f" ({', '.join(bounds)})" if bounds else "")
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
              "likelihood": lambda e: {"model": {"likelihood": e}},
              "injection": lambda e: {"model": {"injections": [e]}},
              "metric": lambda e: {"eval": {"metrics": [e]}},
              "logger": lambda e: {"log": [e]}}[kind](entry)
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
        from cvaekit.plugins.loading import get_registry

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
