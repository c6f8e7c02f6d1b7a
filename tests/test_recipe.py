import pytest
import yaml
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import RecipeError
from cvaekit.recipe import apply_overrides, load_recipe

runner = CliRunner()


def write(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_recipes_validate():
    for name in ("quickstart", "fashion_onehot"):
        recipe = load_recipe(f"{pytest_root()}/recipes/{name}.yaml")
        assert recipe.model.encoder.name == "mlp"


def pytest_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_faithful_recipe_is_the_studys_configuration():
    r = load_recipe(pytest_root() / "recipes" / "fashion_onehot.yaml")
    assert (r.model.latent_dim, r.model.encoder.params["hidden"], r.model.decoder.params["hidden"]) == (20, 400, 400)
    assert (r.train.lr, r.train.batch_size, r.train.epochs) == (1e-3, 128, 50)
    assert r.model.conditioner.name == "onehot" and r.data.name == "fashion_mnist"


def test_defaults_are_filled_and_component_shorthand_expands(tiny_fashion):
    r = load_recipe(tiny_fashion)
    assert r.model.conditioner.name == "onehot" and r.model.conditioner.params == {"classes": None}
    assert r.data.params == {"root": None, "download": True}
    assert r.to_dict()["model"]["encoder"] == {"name": "mlp", "hidden": 64}


def test_overrides_parse_yaml_values_and_reach_nested_keys(tiny_fashion):
    r = load_recipe(tiny_fashion, ["train.epochs=5", "model.latent_dim=32", "train.lr=1e-4",
                                   "model.conditioner.classes=[a, b]", "eval.metrics.0=nelbo"])
    assert (r.train.epochs, r.model.latent_dim, r.train.lr) == (5, 32, 1e-4)
    assert r.model.conditioner.params["classes"] == ["a", "b"]


@pytest.mark.parametrize("override, message", [
    ("train.epoch=5", r"Unknown key 'train.epoch'. Did you mean 'epochs'\?"),
    ("trian.epochs=5", r"Unknown key 'trian'. Did you mean 'train'\?"),
    ("model.encoder.name=mpl", r"Unknown encoder 'mpl'. Did you mean 'mlp'\? Valid encoder names: .*'mlp'"),
    ("model.encoder.hiden=3", r"Unknown key 'model.encoder.hiden' for encoder 'mlp'. Did you mean 'hidden'\?"),
    ("train.epochs=five", r"'train.epochs' must be an integer, got 'five'"),
    ("train.lr=fast", r"'train.lr' must be a number, got 'fast'"),
    ("train.amp=maybe", r"'train.amp' must be true or false"),
    ("eval.metrics=[{name: fid, inception_weights: /no/such.pt}]",
     r"'eval.metrics.0.inception_weights': the path '/no/such.pt' does not exist"),
    ("eval.metrics.3=nelbo", r"'3' is not an index of the 1-item list at 'eval.metrics'"),
    ("model.injections.0.at=1", r"'model.injections' must be a list of injection entries"),
    ("eval.metrics=[nelbo, fidd]", r"'eval.metrics.1.name': Unknown metric 'fidd'"),
    ("train.epochs", r"must look like key.path=value"),
    ("train.epochs=0", r"'train.epochs' must be at least 1, got 0"),
    ("train.lr=-1", r"'train.lr' must be above 0, got -1.0"),
    ("train.lr=0", r"'train.lr' must be above 0, got 0.0"),
    ("train.batch_size=0", r"'train.batch_size' must be at least 1, got 0"),
    ("train.checkpoint_every=0", r"'train.checkpoint_every' must be at least 1, got 0"),
    ("train.limit=0", r"'train.limit' must be at least 1, got 0"),
    ("train.kl_weight=-0.5", r"'train.kl_weight' must be at least 0, got -0.5"),
    ("model.latent_dim=0", r"'model.latent_dim' must be at least 1, got 0"),
    ("model.encoder.hidden=-5", r"'model.encoder.hidden' must be at least 1, got -5"),
    ("eval.samples_per_condition=0", r"'eval.samples_per_condition' must be at least 1, got 0"),
])
def test_recipe_errors_name_the_key_value_and_choices(tiny_fashion, override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(tiny_fashion, [override])


def test_missing_required_key(tiny_fashion):
    del tiny_fashion["model"]["encoder"]
    with pytest.raises(RecipeError, match="Missing key 'model.encoder'"):
        load_recipe(tiny_fashion)


def test_override_does_not_change_the_source(tiny_fashion):
    apply_overrides(tiny_fashion, ["train.epochs=9"])
    assert tiny_fashion["train"]["epochs"] == 2


@pytest.mark.parametrize("override, words", [
    (["--set", "train.epochz=3"], ["Unknown key 'train.epochz'", "epochs"]),
    (["--set", "model.conditioner.name=onehott"], ["Unknown conditioner 'onehott'", "'onehot'"]),
    (["--set", "train.lr=-1"], ["'train.lr' must be above 0, got -1.0"]),
])
def test_cli_recipe_errors_exit_2_without_traceback(tmp_path, tiny_fashion, override, words):
    path = write(tmp_path, tiny_fashion)
    result = runner.invoke(app, ["run", str(path), *override])
    assert result.exit_code == 2
    for word in words:
        assert word in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_cli_missing_recipe_file(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "not valid YAML" in result.output
