"""`cvaekit describe KIND NAME`: parameters with types and defaults, origin, and a recipe
snippet that validates where it is placed; clear errors for unknown kinds and names."""

from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from cvaekit import hookimpl
from cvaekit.cli import app
from cvaekit.recipe.describe import REQUIRED, describe_component
from cvaekit.recipe.reference import recipe_sections
from cvaekit.plugins import load_registry, register_plugin
from cvaekit.recipe import load_recipe
from cvaekit.plugins.registry import KINDS

runner = CliRunner()


class Scaled(torch.nn.Module):
    """Label ids as a scaled one-hot vector.

    scale: what the one-hot entry is multiplied by.
    `labels` (list): class names to use instead of the data set's.
    """

    def __init__(self, *, data, scale: float = 2.0, labels: list[str] | None = None, mode: str = "max"):
        super().__init__()
        self.dim = len(labels or data.classes)


class RuntimePlugin:
    @hookimpl
    def cvaekit_register(self, registry):
        registry.add("conditioner", "scaled", Scaled)


def test_cli_prints_params_types_defaults_help_origin_and_snippet():
    register_plugin(RuntimePlugin(), name="describe_test")
    result = runner.invoke(app, ["describe", "conditioner", "scaled"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "conditioner 'scaled'  (from runtime:describe_test)" in out
    assert "scale   number                  default 2.0" in out
    assert out.count("what the one-hot entry is multiplied by.") == 1  # in the table, not again in the prose
    assert "labels  list of string or null  default null" in out
    assert "class names to use instead of the data set's." in out
    assert "Given by the engine (not recipe keys): data." in out
    snippet = yaml.safe_load(out.split("Recipe snippet:\n", 1)[1])
    assert snippet == {"model": {"conditioner": {"name": "scaled", "scale": 2.0, "labels": None, "mode": "max"}}}


def test_builtin_origin_is_the_cvaekit_distribution():
    info = describe_component("encoder", "mlp", load_registry())
    assert info.origin.startswith("cvaekit ")
    assert [(p.name, p.type, p.default) for p in info.params] == [("hidden", "int (at least 1)", 400)]
    assert info.engine_args == ["image_shape", "cond_dim", "latent_dim", "injections"]


def test_required_parameter_is_marked():
    def needs_root(root: str, n: int = 3):
        """A data set that needs a folder."""

    registry = load_registry()
    registry.add("dataset", "needs_root", needs_root)
    info = describe_component("dataset", "needs_root", registry)
    assert info.params[0].default is REQUIRED
    assert yaml.safe_load(info.snippet) == {"data": {"name": "needs_root", "root": "<string>", "n": 3}}


def _base() -> dict:
    return {"name": "snippet", "data": {"name": "fashion_mnist"},
            "model": {"conditioner": "onehot", "encoder": "mlp", "decoder": "mlp"}}


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("kind,name", [(c.kind, c.name) for c in load_registry().of_kind()])
def test_every_components_snippet_is_a_valid_recipe_part(kind, name, tmp_path):
    registry = load_registry()
    info = describe_component(kind, name, registry)
    snippet = yaml.safe_load(info.snippet)
    top = {"dataset": "data", "metric": "eval", "logger": "log"}.get(kind, "model")
    assert list(snippet) == [top]
    if any(p.default is REQUIRED for p in info.params):
        return  # placeholders such as '<string>' are for a person to fill in
    recipe = load_recipe(_merge(_base(), snippet), registry=registry)
    placed = {"dataset": lambda: recipe.data, "conditioner": lambda: recipe.model.conditioner,
              "encoder": lambda: recipe.model.encoder, "decoder": lambda: recipe.model.decoder,
              "prior": lambda: recipe.model.prior, "likelihood": lambda: recipe.model.likelihood,
              "injection": lambda: recipe.model.injections[0], "metric": lambda: recipe.eval.metrics[0],
              "logger": lambda: recipe.log[0]}[kind]()
    assert placed.name == name


def test_unknown_kind_lists_the_kinds():
    result = runner.invoke(app, ["describe", "conditoner", "onehot"])
    assert result.exit_code == 2
    assert "Unknown kind 'conditoner'. Did you mean 'conditioner'?" in result.output
    assert all(f"'{k}'" in result.output for k in KINDS)


def test_unknown_name_lists_the_valid_names():
    result = runner.invoke(app, ["describe", "encoder", "mpl"])
    assert result.exit_code == 2
    assert "Unknown encoder 'mpl'. Did you mean 'mlp'?" in result.output
    assert "Valid encoder names:" in result.output and "'mlp'" in result.output
    assert "Traceback" not in result.output


def test_recipe_reference_covers_every_key_with_help():
    sections = {path: rows for path, _, rows in recipe_sections()}
    assert {"(top level)", "model", "model.injections[]", "train", "eval"} <= set(sections)
    assert {"key": "log", "type": "list of component"}.items() <= next(
        r for r in sections["(top level)"] if r["key"] == "log").items()  # trackers, named like every part
    assert [r["key"] for r in sections["model.injections[]"]] == ["at", "net"]
    undocumented = [f"{path}.{r['key']}" for path, rows in sections.items() for r in rows if not r["help"]]
    assert not undocumented, (f"recipe keys without help: {undocumented}; add a '# comment' beside the "
                              f"field in cvaekit/recipe/schema.py or an entry in cvaekit.recipe.reference.KEY_HELP")


READ_WITHOUT_TORCH = """
import json, sys
from cvaekit.recipe.describe import describe_component, render_component
from cvaekit.recipe.reference import recipe_reference
from cvaekit.plugins import get_registry
builtins = [(c.kind, c.name) for c in get_registry().of_kind() if c.origin.split()[0] == "cvaekit"]
texts = {f"{k} {n}": render_component(describe_component(k, n)) for k, n in builtins}
print(json.dumps({"torch": "torch" in sys.modules, "reference": recipe_reference(), "texts": texts}))
"""


def test_describe_reads_built_ins_from_their_source_without_torch_and_says_what_the_imported_factory_says(monkeypatch):
    """`describe` and the recipe reference answer without importing torch (seconds), and what
    they read from the source equals what the imported factories give."""
    import json
    import subprocess
    import sys

    import cvaekit.recipe.describe as describe
    import cvaekit.recipe.reference as reference

    out = subprocess.run([sys.executable, "-c", READ_WITHOUT_TORCH], capture_output=True, text=True, check=True)
    static = json.loads(out.stdout)
    assert static["torch"] is False
    monkeypatch.setattr(describe, "read_factory", lambda target: None)  # the import path
    assert static["reference"] == reference.recipe_reference()
    for key, text in static["texts"].items():
        assert text == describe.render_component(describe.describe_component(*key.split())), key


def test_a_signature_the_source_cannot_settle_is_read_from_the_imported_factory(tmp_path, monkeypatch):
    from cvaekit.plugins.registry import Registry
    from cvaekit.recipe.signatures import read_factory

    (tmp_path / "oddparts.py").write_text(
        "from dataclasses import dataclass\n"
        "import torch\n"
        "WIDTH = 3 * 4\n"
        "def made(width: int = WIDTH, scale: float = 1e-3):\n    '''Made.\n\n    width: how wide\n    '''\n"
        "def runtime(scale: float = torch.pi):\n    '''Needs torch.'''\n"
        "@dataclass\nclass Fields:\n    '''A dataclass.'''\n    depth: int = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    made = read_factory("oddparts:made")
    assert made.parameters["width"].default == 12 and made.parameters["scale"].default == 1e-3
    registry = Registry()
    registry.add("metric", "made", "oddparts:made", summary="Made.")
    registry.add("metric", "runtime", "oddparts:runtime", summary="Needs torch.")
    registry.add("metric", "fields", "oddparts:Fields", summary="A dataclass.")
    info = describe_component("metric", "made", registry)
    assert [(p.name, p.type, p.default, p.help) for p in info.params] == [
        ("width", "int", 12, "how wide"), ("scale", "number", 1e-3, "")]
    assert describe_component("metric", "runtime", registry).params[0].default == pytest.approx(3.14159)
    assert describe_component("metric", "fields", registry).params[0].default == 2
