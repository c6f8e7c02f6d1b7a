"""A factory's signature and docstrings read from its source, without importing its module.

`describe` and the recipe reference need a component's parameters, types and defaults; a
component's module imports torch (seconds), its source says all of that. Names in annotations
and defaults are resolved the way Python would, but statically: the standard library and
modules already imported are imported, any other module is read in turn for a top-level
assignment (`Channels = Literal[...]`). Whatever cannot be resolved that way gives None, and
the caller imports the factory as before.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StaticFactory:
    parameters: dict[str, inspect.Parameter]  # annotations resolved
    doc: str  # the class's (or function's) docstring, cleaned like inspect.getdoc
    init_doc: str  # a class's __init__ docstring


class Unresolved(Exception):
    """A name the source alone does not settle."""


def read_factory(target: str) -> StaticFactory | None:
    """The factory at "package.module:Name" as its source gives it, or None when that needs
    an import (a name bound at run time, a class without its own __init__, a nested path)."""
    module, _, attr = target.partition(":")
    if "." in attr or module in sys.modules:
        return None  # imported already: inspecting the real object is as quick
    try:
        mod = _StaticModule.of(module)
        node = mod.definitions.get(attr)
        if isinstance(node, ast.ClassDef):
            init = _init_of(node, mod)
            if init is None:
                return None
            params = {} if init is _NO_INIT else _parameters(init, mod, skip_first=True)
            init_doc = "" if init is _NO_INIT else ast.get_docstring(init) or ""
            return StaticFactory(params, ast.get_docstring(node) or "", init_doc)
        if isinstance(node, ast.FunctionDef):
            return StaticFactory(_parameters(node, mod), ast.get_docstring(node) or "", "")
    except (Unresolved, SyntaxError, OSError, ImportError, ValueError):
        return None
    return None


_NO_INIT = ast.FunctionDef(name="__init__")  # a plain class that takes no arguments


def _init_of(node: ast.ClassDef, mod: _StaticModule, depth: int = 0) -> ast.FunctionDef | None:
    """The class's own __init__, or that of a base defined in the same module; None when a
    decorator (a dataclass) or a base from elsewhere decides it."""
    if node.decorator_list or depth > 8:
        return None
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return init
    if not node.bases:
        return _NO_INIT
    base = node.bases[0]
    if isinstance(base, ast.Name) and isinstance(mod.definitions.get(base.id), ast.ClassDef):
        return _init_of(mod.definitions[base.id], mod, depth + 1)
    return None


def _parameters(fn: ast.FunctionDef, mod: _StaticModule, skip_first: bool = False) -> dict[str, inspect.Parameter]:
    a = fn.args
    positional = (a.posonlyargs + a.args)[1 if skip_first else 0:]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out: dict[str, inspect.Parameter] = {}
    for arg, default in zip(positional, defaults):
        out[arg.arg] = _parameter(arg, default, inspect.Parameter.POSITIONAL_OR_KEYWORD, mod)
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        out[arg.arg] = _parameter(arg, default, inspect.Parameter.KEYWORD_ONLY, mod)
    return out


def _parameter(arg: ast.arg, default: ast.expr | None, kind, mod: _StaticModule) -> inspect.Parameter:
    empty = inspect.Parameter.empty
    annotation = empty if arg.annotation is None else _Lazy(arg.annotation, mod)
    return inspect.Parameter(arg.arg, kind, default=empty if default is None else mod.evaluate(default),
                             annotation=annotation)


class _Lazy:
    """An annotation evaluated when asked for: engine arguments (`data: DataInfo`) are never
    shown, so their types need not resolve."""

    def __init__(self, node: ast.expr, mod: _StaticModule):
        self.node, self.mod = node, mod

    def resolve(self) -> Any:
        return self.mod.evaluate(self.node)


def resolve_annotation(annotation: Any) -> Any:
    """The value of a statically read annotation (raises Unresolved), or the annotation itself."""
    return annotation.resolve() if isinstance(annotation, _Lazy) else annotation


class _Names(dict):
    """A module's names, each resolved on first lookup (eval asks a locals mapping by key)."""

    def __init__(self, mod: _StaticModule):
        super().__init__()
        self.mod = mod

    def __missing__(self, name: str) -> Any:
        value = self.mod.resolve(name)
        self[name] = value
        return value


class _StaticModule:
    """One module's top-level imports, assignments and definitions, from its source."""

    def __init__(self, name: str, tree: ast.Module):
        self.name = name
        self.imports: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attribute or None)
        self.assignments: dict[str, ast.expr] = {}
        self.definitions: dict[str, ast.AST] = {}
        package = name.rpartition(".")[0]
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                source = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (source, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.partition(".")[0]
                    self.imports[local] = (alias.name if alias.asname else local, None)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.assignments[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.assignments[node.target.id] = node.value
            elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                self.definitions[node.name] = node
        self.names = _Names(self)

    @staticmethod
    @lru_cache(maxsize=None)
    def of(name: str) -> _StaticModule:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            raise Unresolved(name)
        return _StaticModule(name, ast.parse(Path(spec.origin).read_text(encoding="utf-8")))

    def evaluate(self, node: ast.expr) -> Any:
        try:
            return eval(compile(ast.Expression(node), f"<{self.name}>", "eval"), {"__builtins__": {}}, self.names)
        except Unresolved:
            raise
        except Exception as exc:  # noqa: BLE001 - anything the source alone cannot settle
            raise Unresolved(ast.unparse(node)) from exc

    def resolve(self, name: str) -> Any:
        if name in self.assignments:
            return self.evaluate(self.assignments[name])
        if name in self.imports:
            module, attr = self.imports[name]
            if _importable(module):
                obj = importlib.import_module(module)
                return obj if attr is None else getattr(obj, attr)
            if attr is None:
                raise Unresolved(name)
            return _StaticModule.of(module).resolve(attr)
        if name in self.definitions:
            raise Unresolved(name)  # a class or function of the module itself: needs the module
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise Unresolved(name)


def _importable(module: str) -> bool:
    """Import only what costs nothing: modules already loaded and the standard library."""
    return module in sys.modules or module.partition(".")[0] in sys.stdlib_module_names
