import pytest
import torch
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
    assert r.data.params == {"root": None, "download": True, "binarize": False}
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


@pytest.mark.parametrize("override, message", [
    ("model.encoder.name=[1, 2]", r"'model.encoder.name' must be a string naming the encoder, got \[1, 2\]. Valid encoder names: .*'mlp'"),
    ("model.conditioner={}", r"'model.conditioner' must be a conditioner name or a mapping with 'name', got \{\}. Valid conditioner names"),
    ("model.conditioner.name={a: 1}", r"'model.conditioner.name' must be a string naming the conditioner, got \{'a': 1\}"),
    ("train=adam", r"'train' must be a mapping of keys, got 'adam'"),
    ("train.epochs=[3]", r"'train.epochs' must be an integer, got \[3\]"),
    ("train.lr=1e999", r"'train.lr' must be a finite number, got '1e999'"),
    ("train.lr=.nan", r"'train.lr' must be a finite number, got nan"),
    ("train.kl_weight=.inf", r"'train.kl_weight' must be a finite number"),
    ("train.epochs=2.5", r"'train.epochs' must be an integer, got 2.5"),
    ("train.epochs=1e999", r"'train.epochs' must be an integer, got '1e999'"),
    ("train.batch_size=99999999999999999999999", r"'train.batch_size' must be an integer that fits in 64 bits"),
    ("train.lr=[unclosed", r"Override 'train.lr=\[unclosed': the value is not valid YAML"),
    ('runs_dir="a\\0b"', r"'runs_dir' must not hold a NUL character"),
    ("name=a/b", r"'name' names the run folder"),
])
def test_wrong_shapes_and_non_finite_numbers_are_recipe_errors(tiny_fashion, override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(tiny_fashion, [override])


def test_number_strings_count_the_same_for_int_and_float_keys(tiny_fashion):
    tiny_fashion["train"].update(batch_size="256", lr="1e-3", epochs=3.0)
    tiny_fashion["model"]["encoder"]["hidden"] = " 32 "
    r = load_recipe(tiny_fashion)
    assert (r.train.batch_size, r.train.lr, r.train.epochs) == (256, 1e-3, 3)
    assert r.model.encoder.params["hidden"] == 32 and isinstance(r.train.epochs, int)


def test_a_model_too_big_for_the_machine_is_refused_before_allocating(tmp_path, tiny_fashion):
    path = write(tmp_path, tiny_fashion)
    result = runner.invoke(app, ["run", str(path), "--set", "model.encoder.hidden=100000000000"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "The model does not fit" in text and "TB" in text
    assert "model.encoder 'mlp' (hidden=100000000000): 81,100,000,000,016 parameters" in text
    assert "'train.batch_size'" in text and "Traceback" not in text
    assert not (tmp_path / "runs").exists()  # refused before the run folder is made


def test_the_memory_guard_counts_parameters_and_activations(tiny_fashion):
    from cvaekit.training.memory import check_fits, estimate
    from cvaekit.plugins import get_registry

    registry = get_registry()
    recipe = load_recipe(tiny_fashion)
    data = registry.build("dataset", recipe.data.name, recipe.data.params)
    cond = registry.build("conditioner", "onehot", {"classes": None}, data=data.info())
    est = estimate(recipe.model, data.info(), cond, registry, data.train.batch(torch.arange(4))[1], 64)
    # mlp encoder: (784 + 10) * 64 + 64 + 2 * (64 * 8 + 8); decoder: (8 + 10) * 64 + 64 + 64 * 784 + 784 = 52,176
    assert est.parameters == {"model.conditioner": 0, "model.encoder": 51_920, "model.decoder": 52_176}
    assert 64 * 4 * (64 + 8 + 8 + 64 + 784) <= est.activations <= 64 * 4 * 3 * (64 + 8 + 8 + 64 + 784)
    check_fits(est, recipe.model, torch.device("cpu"), free=(10**9, "plenty"))
    with pytest.raises(RecipeError, match=r"104,096 parameters .* but 1 KB is all there is. By part: "
                                          r"model.decoder 'mlp' \(hidden=64\): 52,176 parameters"):
        check_fits(est, recipe.model, torch.device("cpu"), free=(1000, "1 KB is all there is"))


def test_onehot_class_names_in_a_recipe_must_be_words_one_per_class(tiny_fashion, registry):
    """Found by the property test: `classes: ['']` trained a one-class model on ten classes."""
    data = registry.build("dataset", "fashion_mnist").info()
    with pytest.raises(RecipeError, match=r"'model.conditioner.classes' must be class names, but entry 0 is ''"):
        registry.build("conditioner", "onehot", {"classes": [""]}, data=data)
    with pytest.raises(RecipeError, match=r"'model.conditioner.classes' names 2 classes .* the data set has 10"):
        registry.build("conditioner", "onehot", {"classes": ["a", "b"]}, data=data)
    renamed = registry.build("conditioner", "onehot", {"classes": [f"c{i}" for i in range(10)]}, data=data)
    assert renamed.parse(["c3"]).tolist() == [3]
