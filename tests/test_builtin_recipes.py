"""The recipes that come with cvaekit live inside the package: named instead of a path
(`cvaekit run quickstart`), listed (`cvaekit recipes`), printed to copy (`recipes show`),
and `recipes/NAME.yaml` paths keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cvaekit.assembly import build_dataset, build_model
from cvaekit.cli import app
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.recipe.builtin import builtin_folder, builtin_recipes, summary
from cvaekit.store.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_the_recipes_are_package_data_and_recipes_links_to_them():
    assert builtin_folder() == ROOT / "cvaekit" / "recipes"
    assert (ROOT / "recipes").resolve() == builtin_folder().resolve()
    assert {p.stem for p in builtin_folder().glob("*.yaml")} == set(builtin_recipes()) >= {"quickstart", "shapes_best"}


def test_a_name_a_path_and_the_docs_path_are_the_same_recipe(tmp_path, monkeypatch):
    by_path = load_recipe(builtin_folder() / "quickstart.yaml").to_dict()
    assert load_recipe("quickstart").to_dict() == by_path
    assert load_recipe("quickstart.yaml").to_dict() == by_path
    monkeypatch.chdir(tmp_path)  # no recipes/ here: the docs' path still finds the built-in one
    assert load_recipe("recipes/quickstart.yaml").to_dict() == by_path
    (tmp_path / "quickstart").write_text("name: mine\ndata: fashion_mnist\n"
                                         "model: {conditioner: onehot, encoder: mlp, decoder: mlp}\n")
    assert load_recipe("quickstart").name == "mine"  # a file of that name comes first


def test_an_unknown_name_is_one_line_with_a_suggestion():
    result = runner.invoke(app, ["run", "quickstrat"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "no built-in recipe is called 'quickstrat'. Did you mean 'quickstart'?" in text
    assert "`cvaekit recipes` lists those" in text


def test_recipes_lists_each_with_a_line():
    result = runner.invoke(app, ["recipes"], terminal_width=250)
    assert result.exit_code == 0, result.output
    for name, path in builtin_recipes().items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert summary(path) and summary(path)[:40] in line
    assert summary(builtin_recipes()["quickstart"]).startswith("A first run in about a minute")


def test_recipes_show_prints_one_to_copy(tmp_path):
    result = runner.invoke(app, ["recipes", "show", "quickstart"])
    assert result.exit_code == 0 and result.output == (builtin_folder() / "quickstart.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(result.output)
    assert load_recipe(tmp_path / "mine.yaml").to_dict() == load_recipe("quickstart").to_dict()
    missing = runner.invoke(app, ["recipes", "show", "nope"])
    assert missing.exit_code == 2 and "No built-in recipe is called 'nope'" in missing.output


def test_cvaekit_run_takes_a_name(tmp_path):
    result = runner.invoke(app, ["run", "quickstart", "-q", "--set", "train.epochs=1", "--set", "train.limit=256",
                                 "--set", "eval.limit=64", "--set", "eval.metrics=[nelbo]",
                                 "--set", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("quickstart-") and RunDir(run).last.is_file()


def test_version():
    from cvaekit import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cvaekit {__version__}"


@pytest.mark.parametrize("name, small", [("fashion_captions", ["data.n_train=32", "data.n_test=8"]),
                                         ("shapes_best", ["data.n_train=32", "data.n_test=8"]),
                                         ("fashion_conv", [])])
def test_the_decoder_recipes_build_and_draw_at_their_data_size(name, small):
    registry = get_registry()
    recipe = load_recipe(name, small)
    data = build_dataset(recipe, registry)
    model = build_model(recipe.model, data.info(), registry).eval()
    raw = data.test.conditions[:2] if data.test.labelled else [caps[0] for caps in data.test.conditions[:2]]
    with torch.no_grad():
        assert model.sample(raw).shape == (2, *data.image_shape)
