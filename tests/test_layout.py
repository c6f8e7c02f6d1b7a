"""The engine's house: folders by stage, imports in one direction, modules and functions short.

Each layer may import the layers listed before it (and itself), never one after it, so the
engine reads from the bottom up: errors, runtime, core, plugins, recipe, store, caches,
assembly, evaluation, testing, training, serving, the CLI. Components (plugins like any
other) import what a plugin author may (docs/api.md), and the engine never names them.
Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cvaekit"

LAYERS = ["errors", "runtime", "core", "plugins", "recipe", "store", "caches", "assembly",
          "evaluation", "testing", "training", "serving", "cli"]
# What a component may import: the plugin author's surface (docs/api.md).
COMPONENT_MAY_IMPORT = {"errors", "runtime", "core", "plugins", "recipe", "store", "caches", "evaluation",
                        "components"}


def modules() -> dict[str, Path]:
    found = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported(path: Path, module: str) -> set[str]:
    """Every cvaekit module `path` imports, at its top or inside functions."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] if base == "cvaekit" else [base]
            found.update(n for n in names if n.startswith("cvaekit"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cvaekit"))
    return found


def engine_modules() -> dict[str, Path]:
    skip = ("cvaekit.components", "cvaekit._moved")
    return {m: p for m, p in modules().items() if not m.startswith(skip) and m not in ("cvaekit", "cvaekit.__main__")}


def test_the_engine_imports_only_downwards():
    wrong = []
    for module, path in engine_modules().items():
        own = LAYERS.index(layer_of(module))
        for target in imported(path, module):
            layer = layer_of(target)
            if layer == "components":
                wrong.append(f"{module} names the built-in components ({target})")
            elif layer in LAYERS and LAYERS.index(layer) > own:
                wrong.append(f"{module} ({LAYERS[own]}) imports {target} ({layer}), a layer above it")
    assert not wrong, "\n".join(wrong)


def test_every_engine_module_sits_in_a_layer():
    assert {layer_of(m) for m in engine_modules()} <= set(LAYERS)


def test_components_import_only_the_plugin_authors_surface():
    wrong = [f"{m} imports {t}" for m, p in modules().items() if m.startswith("cvaekit.components.")
             for t in imported(p, m) if t != "cvaekit" and layer_of(t) not in COMPONENT_MAY_IMPORT]
    assert not wrong, "\n".join(wrong)


def test_the_core_and_the_recipe_know_nothing_of_each_other():
    """The model is torch only; a recipe is plain data checked without torch."""
    for module, path in engine_modules().items():
        targets = {layer_of(t) for t in imported(path, module)}
        if layer_of(module) == "core":
            assert targets <= {"errors", "core"}, module
        if layer_of(module) == "recipe":
            assert "import torch" not in path.read_text(), module


def test_the_checker_itself_finds_an_upward_import(tmp_path):
    """A test that cannot fail is a defect: an upward import in a made-up module is found."""
    path = tmp_path / "bad.py"
    path.write_text("def f():\n    from cvaekit.training.run import train\n")
    assert imported(path, "cvaekit.core.bad") == {"cvaekit.training.run"}
    assert LAYERS.index(layer_of("cvaekit.training.run")) > LAYERS.index(layer_of("cvaekit.core.bad"))


@pytest.mark.parametrize("limit_lines", [300])
def test_no_module_is_over_300_lines(limit_lines):
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > limit_lines}
    assert not long, long


def test_no_function_is_over_60_lines():
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, "\n".join(long)
