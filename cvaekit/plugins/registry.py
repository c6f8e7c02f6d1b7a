"""The registry: every component, by kind and name, with the package it came from.

A component is a factory (a class or function) plus where it came from and a one-line
summary. The factory may be given as an import path, "package.module:Name", with its
summary: it is imported on first use, so listing components never imports torch (the way
transformers and diffusers keep their top-level imports lazy). The engine builds parts only
through `Registry.build`, so a third-party part is a peer of the built-in ones.
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from cvaekit.errors import (
    ComponentError,
    CvaekitError,
    DuplicateComponentError,
    UnknownComponentError,
    choices_text,
    did_you_mean,
)

_NAME_FAILURES = contextvars.ContextVar("cvaekit_name_failures", default=False)

KINDS = ("conditioner", "injection", "encoder", "decoder", "likelihood", "prior", "dataset", "metric", "logger")


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    target: Callable[..., Any] | str  # the factory, or its import path "package.module:Name"
    origin: str
    given_summary: str = ""

    @cached_property
    def factory(self) -> Callable[..., Any]:
        """The factory, imported from its path on first use."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - say which component's import failed
            raise ComponentError(f"The {self.kind} '{self.name}' (from {self.origin}) could not be "
                                 f"imported from '{self.target}': {type(exc).__name__}: {exc} "
                                 f"(the whole error: python -c \"import {module}\")") from exc
        if not callable(obj):
            raise ComponentError(f"The {self.kind} '{self.name}' (from {self.origin}): '{self.target}' "
                                 f"is {type(obj).__name__}, not a class or function.")
        return obj

    @cached_property
    def summary(self) -> str:
        """The summary given at registration, else the factory's first docstring sentence."""
        return self.given_summary or _first_sentence(self.factory.__doc__)

    def params(self) -> dict[str, inspect.Parameter]:
        """Recipe-settable parameters: keyword parameters of the factory that are not
        supplied by the engine (those are keyword-only and listed in `ENGINE_ARGS`)."""
        sig = inspect.signature(self.factory)
        return {
            n: p
            for n, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in ENGINE_ARGS.get(self.kind, ())
        }


# Arguments the engine passes to each kind's factory, by keyword. Everything else in a
# factory's signature is a recipe parameter.
ENGINE_ARGS: dict[str, tuple[str, ...]] = {
    "conditioner": ("data",),
    "injection": ("cond_dim", "channels"),
    "encoder": ("image_shape", "cond_dim", "latent_dim", "injections"),
    "decoder": ("image_shape", "cond_dim", "latent_dim", "injections"),
    "likelihood": ("image_shape",),
    "prior": ("cond_dim", "latent_dim"),
    "dataset": (),
    "metric": (),
    "logger": (),  # the run folder and the recipe come with `start(run, params)`
}


@dataclass
class PluginFailure:
    """A plugin that could not be imported or could not register (`partial`: only the
    components whose names another plugin or a built-in already held were left out)."""

    plugin: str
    origin: str
    error: str
    partial: bool = False


class NameTaken(DuplicateComponentError):
    """Components of a plugin whose names were already taken; its other components loaded.

    `clashes` holds (kind, name, the holder's origin); `loaded` the (kind, name) that loaded."""

    def __init__(self, origin: str, clashes: list[tuple[str, str, str]], loaded: list[tuple[str, str]]):
        self.clashes, self.loaded = clashes, loaded
        parts = [_taken_text(kind, name, holder, origin) for kind, name, holder in clashes]
        others = (f"Its other components were loaded: {', '.join(f'{k} {n!r}' for k, n in loaded)}."
                  if loaded else "It has no other components.")
        kinds = sorted({kind for kind, _, _ in clashes})
        shows = "cvaekit list-components" + (f" --kind {kinds[0]}" if len(kinds) == 1 else "")
        super().__init__(" ".join(parts) + f" {others} `{shows}` shows which package holds each name.")


@dataclass
class Registry:
    components: dict[tuple[str, str], Component] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def add(self, kind: str, name: str, factory: Callable[..., Any], *, summary: str = "",
            origin: str = "runtime") -> Component:
        """Register one component: `factory` is a class or function, or its import path
        "package.module:Name" (then give `summary`, so listing it imports nothing). Raises if
        the kind is unknown or the name is taken."""
        check_kind(kind, name)
        if not (callable(factory) or is_import_path(factory)):
            raise TypeError(f"factory for {kind} '{name}' must be callable or an import path "
                            f"'package.module:Name', got {factory!r}")
        self.check_free(kind, name, origin)
        comp = Component(kind, name, factory, origin, summary)
        self.components[(kind, name)] = comp
        return comp

    def check_free(self, kind: str, name: str, origin: str) -> None:
        if (kind, name) in self.components:
            raise DuplicateComponentError(self.clash_text(kind, name, origin))

    def clash_text(self, kind: str, name: str, origin: str) -> str:
        first = self.components[(kind, name)].origin
        if first.split()[0] == "cvaekit":
            return (f"The {kind} '{name}' from {origin} has the name of a cvaekit built-in ({first}); "
                    f"rename the plugin's component, e.g. '{name}_{origin.split()[0].replace('-', '_')}'.")
        return (f"Two plugins register the {kind} '{name}': one from {first} and one from {origin}. "
                f"Uninstall one of them or rename its component.")

    def get(self, kind: str, name: str) -> Component:
        try:
            return self.components[(kind, name)]
        except KeyError:
            names = self.names(kind)
            failed = "".join(f" The plugin '{f.plugin}' from {f.origin} left out components whose names were "
                             f"taken ({f.error})" if f.partial else
                             f" The plugin '{f.plugin}' from {f.origin} failed to load ({f.error}), "
                             f"so its components are missing." for f in self.failures)
            raise UnknownComponentError(
                f"Unknown {kind} '{name}'.{did_you_mean(name, names)} "
                f"Valid {kind} names: {choices_text(names)}.{failed}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(n for k, n in self.components if k == kind)

    def of_kind(self, kind: str | None = None) -> list[Component]:
        comps = [c for c in self.components.values() if kind in (None, c.kind)]
        return sorted(comps, key=lambda c: (KINDS.index(c.kind), c.name))

    def build(self, kind: str, name: str, params: dict[str, Any] | None = None,
              **engine_args: Any) -> Any:
        """Build the named component from recipe `params` and the engine's arguments."""
        comp = self.get(kind, name)
        try:
            return comp.factory(**engine_args, **(params or {}))
        except CvaekitError:
            raise
        except Exception as exc:
            if not _NAME_FAILURES.get():
                raise
            raise ComponentError(f"The {kind} '{name}' (from {comp.origin}) failed to build with "
                                 f"{params or {}}: {type(exc).__name__}: {exc}") from exc


@contextmanager
def named_failures():
    """Inside, a component whose factory raises becomes a ComponentError naming it (the engine
    builds runs this way; `cvaekit.testing` sees the raw error, to judge a plugin's own)."""
    token = _NAME_FAILURES.set(True)
    try:
        yield
    finally:
        _NAME_FAILURES.reset(token)


def metric_itself(kind: str, name: str, factory: Callable[..., Any]) -> str | None:
    """What is wrong, when a metric is registered as the metric itself (a function of `ctx`)
    instead of the factory that returns it; None when it is not."""
    if kind != "metric":
        return None
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    for p in params:
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        if p.default is p.empty and p.kind != p.VAR_POSITIONAL and (p.name == "ctx" or "EvalContext" in ann):
            what = getattr(factory, "__name__", "it")
            return (f"'{what}' takes '{p.name}' itself, so it is the metric, but a metric factory returns "
                    f"the metric: register a factory that builds it, e.g. registry.add(\"metric\", "
                    f"\"{name}\", lambda: {what}), or a class whose __call__(self, ctx) returns the numbers")
    return None


def is_import_path(target: Any) -> bool:
    return isinstance(target, str) and re.fullmatch(r"[\w.]+:[\w.]+", target) is not None


def check_kind(kind: str, name: str) -> None:
    if kind not in KINDS:
        raise UnknownComponentError(
            f"Unknown component kind '{kind}' for '{name}'.{did_you_mean(kind, KINDS)} "
            f"Valid kinds: {choices_text(KINDS)}.")


def _first_sentence(doc: str | None) -> str:
    """The docstring's first sentence, joined onto one line: a summary for tables."""
    if not doc or not doc.strip():
        return ""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


class Registrar:
    """What a plugin's hook receives: `add` with the plugin's origin filled in.

    Additions are staged and only committed when the whole plugin registered cleanly,
    so a plugin that fails half-way leaves nothing behind."""

    def __init__(self, registry: Registry, origin: str):
        self._registry = registry
        self.origin = origin
        self.staged: list[tuple[str, str, Callable[..., Any], str]] = []

    def add(self, kind: str, name: str, factory: Callable[..., Any], *, summary: str = "") -> None:
        check_kind(kind, name)
        self.staged.append((kind, name, factory, summary))

    def commit(self) -> None:
        """Add every staged component whose name is free; then raise for those that clash,
        so the plugin's other components still load."""
        clashes, loaded = [], []
        for kind, name, factory, summary in self.staged:
            if (kind, name) in self._registry.components:
                clashes.append((kind, name, self._registry.components[(kind, name)].origin))
            else:
                self._registry.add(kind, name, factory, summary=summary, origin=self.origin)
                loaded.append((kind, name))
        if clashes:
            raise NameTaken(self.origin, clashes, loaded)


def _taken_text(kind: str, name: str, holder: str, origin: str) -> str:
    """One clash: which component was left out, who holds its name, and what to do."""
    if holder.split()[0] == "cvaekit":
        return (f"Its {kind} '{name}' was not registered: the name is taken by the cvaekit built-in {kind} "
                f"'{name}' ({holder}); rename the plugin's component, e.g. "
                f"'{name}_{origin.split()[0].replace('-', '_')}'.")
    return (f"Its {kind} '{name}' was not registered: the name is taken by the {kind} '{name}' of {holder}, "
            f"loaded first; uninstall one of the two packages or rename one of the components.")
