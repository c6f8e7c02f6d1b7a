"""Sharing models: `cvaekit export` writes a folder in the Hub's layout (nothing pickled),
which loads, in a new process, into the very model of the run (the same pixels); a hub id
loads from a cache laid out as huggingface_hub lays it out, offline; `push` fails clearly
offline or without a token and leaves nothing behind; what is unsafe or broken is refused
in one line. Nothing here reaches the Hugging Face Hub."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from cvaekit.assembly import load_run
from cvaekit.cli import app
from cvaekit.core.sampling import sample_rows
from cvaekit.errors import CvaekitError
from cvaekit.serving.export import export_run
from cvaekit.store.runs import RunDir
from cvaekit.training.fit_prior import fit_prior
from cvaekit.training.run import train

TEXTS = ["Sneaker", "Bag", "Trouser"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import fashion_recipe

    recipe = fashion_recipe(tmp_path_factory.mktemp("share-run"), epochs=1, limit=256)
    recipe["eval"]["limit"] = 128
    return train(recipe, progress=False)


@pytest.fixture(scope="module")
def fitted_run(run, tmp_path_factory):
    """The run again, with a mixture prior fitted to its last checkpoint."""
    copy = tmp_path_factory.mktemp("share-fitted") / "run"
    shutil.copytree(run, copy)
    fit_prior(copy, "mixture", ["components=2"], epochs=1, progress=False, measure=False)
    return copy


@pytest.fixture
def exported(run, tmp_path):
    return export_run(run, tmp_path / "exported")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`cvaekit ARGS` in a new process (offline, as every test is)."""
    return subprocess.run([sys.executable, "-m", "cvaekit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def images(source, **kwargs) -> list[torch.Tensor]:
    return sample_rows(load_run(source, **kwargs).model, TEXTS, 4, seed=3, temperature=0.9)


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------- export and load


def test_an_exported_folder_is_the_hub_layout_with_nothing_pickled(run, exported):
    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md", "config.json", "metrics.jsonl", "model.safetensors", "recipe.yaml", "samples.png"]
    for path in exported.iterdir():  # plain text, a PNG or safetensors (a JSON header, then raw numbers)
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            header = json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])
            assert header["__metadata__"]["library"] == "cvaekit"
        elif path.suffix == ".png":
            assert data.startswith(b"\x89PNG")
        else:
            data.decode("utf-8")
    weights = load_file(exported / "model.safetensors")
    state = torch.load(RunDir(run).last, weights_only=True)["model"]
    assert weights.keys() == state.keys() and all(torch.equal(weights[k], state[k]) for k in state)
    config = json.loads((exported / "config.json").read_text())
    assert config["library_name"] == "cvaekit" and config["epoch"] == 1
    assert config["data"]["image_shape"] == [1, 28, 28] and "Sneaker" in config["data"]["classes"]
    assert config["conditioner"]["name"] == "onehot"
    assert {"kind": "encoder", "name": "mlp"}.items() <= config["components"][2].items()


def test_export_then_load_in_a_new_process_gives_the_very_pictures_of_the_run(run, exported, tmp_path):
    from_run = cli("generate", str(run), *TEXTS, "-n", "5", "--seed", "7", "-o", str(tmp_path / "run.png"))
    from_export = cli("generate", str(exported), *TEXTS, "-n", "5", "--seed", "7", "-o", str(tmp_path / "exp.png"))
    assert from_run.returncode == 0 and from_export.returncode == 0, from_export.stderr
    assert (tmp_path / "run.png").read_bytes() == (tmp_path / "exp.png").read_bytes()
    assert same(images(run), images(exported))


def test_the_card_parses_with_huggingface_hub_and_carries_the_metrics(run, exported):
    from huggingface_hub import ModelCard

    card = ModelCard.load(exported / "README.md")
    assert card.data.library_name == "cvaekit"
    assert {"cvaekit", "text-to-image", "fashion_mnist"} <= set(card.data.tags)
    assert card.data.datasets == ["fashion_mnist"]
    measured = RunDir(run).metrics_at(1)
    found = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert found["nelbo"] == pytest.approx(measured["nelbo"])
    for part in ("## Metrics", "| nelbo |", "![samples](samples.png)", "cvaekit generate", "cvaekit.load_run(",
                 "## Recipe", "name: tiny_fashion", "class words"):
        assert part in card.text, part


def test_the_cards_grid_is_what_generate_draws(exported, tmp_path):
    config = json.loads((exported / "config.json").read_text())
    grid = config["grid"]
    result = cli("generate", str(exported), *grid["texts"], "-n", str(grid["n"]), "--seed", str(grid["seed"]),
                 "-o", str(tmp_path / "again.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "again.png").read_bytes() == (exported / "samples.png").read_bytes()


def test_a_fitted_prior_travels_as_its_own_safetensors(fitted_run, tmp_path):
    exported = export_run(fitted_run, tmp_path / "exported")
    assert (exported / "prior.safetensors").is_file()
    assert json.loads((exported / "config.json").read_text())["fitted_prior"]["name"] == "mixture"
    loaded = load_run(exported)
    assert loaded.fitted_prior is not None
    assert same(images(fitted_run), images(exported))
    assert not same(images(fitted_run), images(exported, fitted_prior=False))


def test_an_exported_model_holds_one_checkpoint(exported):
    assert load_run(exported, "last").epoch == 1 and load_run(exported, "1").epoch == 1
    with pytest.raises(CvaekitError, match="exported model of epoch 1; it holds no checkpoint '5'"):
        load_run(exported, "5")


def test_evaluate_and_fit_prior_write_into_a_local_copy(run, exported, tmp_path):
    from cvaekit.evaluation.checkpoints import evaluate

    before = sorted(p.name for p in exported.iterdir())
    on_copy = evaluate(exported, "last", ["nelbo"], device="cpu", figures=False, into=tmp_path / "copy")
    on_run = evaluate(run, "last", ["nelbo"], device="cpu", figures=False)
    assert on_copy.rows[0]["nelbo"] == on_run.rows[0]["nelbo"]  # the same model, the same number
    assert (tmp_path / "copy" / "evaluation.csv").is_file()
    result = fit_prior(exported, "mixture", ["components=2"], epochs=1, progress=False, measure=False,
                       into=tmp_path / "fitted")
    assert result.path == RunDir(tmp_path / "fitted").fitted_prior(1) and result.path.is_file()
    assert sorted(p.name for p in exported.iterdir()) == before  # the exported folder is left as it was
    assert same(images(exported), images(tmp_path / "fitted", fitted_prior=False))


def test_serve_takes_an_exported_folder(run, exported):
    from cvaekit.serving.service import load_runs

    served = load_runs([str(run), str(exported)], device="cpu")
    assert served[1].label == "exported · epoch 1"
    assert "name: tiny_fashion" in served[1].recipe_text and served[1].metrics()


# ---------------------------------------------------------------------------- hub ids


def lay_out_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = "a" * 40,
                      refs: tuple[str, ...] = ("main",)) -> None:
    """`folder`'s files in a cache laid out as huggingface_hub lays it out: blobs named by
    their hash, a snapshot per commit of links to them, a ref naming the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for path in folder.iterdir():
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)


def test_a_hub_id_loads_from_the_cache_offline_as_the_run(run, exported, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, "alice/tiny-fashion", exported, refs=("main", "v1"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    for name in ("alice/tiny-fashion", "alice/tiny-fashion@v1", f"alice/tiny-fashion@{'a' * 40}"):
        assert same(images(run), images(name)), name
    result = cli("generate", "alice/tiny-fashion", *TEXTS, "-n", "5", "-o", str(tmp_path / "hub.png"))
    cli("generate", str(run), *TEXTS, "-n", "5", "-o", str(tmp_path / "run.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hub.png").read_bytes() == (tmp_path / "run.png").read_bytes()


def test_a_hub_id_not_in_the_cache_offline_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["generate", "alice/nothing-here", "Bag"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text
    assert "'alice/nothing-here' is no folder here, and no model in the Hugging Face cache" in text
    assert "HF_HUB_OFFLINE is set" in text


# ---------------------------------------------------------------------------- push


@pytest.mark.parametrize("env, message", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set, so nothing can be pushed"),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}, "No Hugging Face token found: log in with `hf auth login`"),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_not_a_token", "HF_ENDPOINT": "http://127.0.0.1:9"},
     "Could not push to 'alice/tiny' on the Hugging Face Hub"),
], ids=["offline", "no-token", "no-network"])
def test_push_fails_with_one_clear_line_and_leaves_nothing(run, tmp_path, env, message):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    files = sorted(p.relative_to(run) for p in Path(run).rglob("*"))
    result = cli("push", str(run), "alice/tiny", env={**env, "HF_HOME": str(tmp_path / "hf-home"), "TMPDIR": str(tmp)})
    text = " ".join(result.stderr.split())
    assert result.returncode == 2 and text.startswith("Error:") and "Traceback" not in text, text
    assert message in text and "Nothing was uploaded." in text
    assert list(tmp.iterdir()) == []  # no half-written export left behind
    assert sorted(p.relative_to(run) for p in Path(run).rglob("*")) == files


# ---------------------------------------------------------------------------- refusals


def refused(source, message: str) -> None:
    with pytest.raises(CvaekitError, match=message):
        load_run(source)
    result = CliRunner().invoke(app, ["generate", str(source), "Bag"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and text.startswith("Error:") and "Traceback" not in text, text


def test_a_pickle_where_weights_go_is_refused(exported):
    torch.save({"x": torch.zeros(1)}, exported / "pytorch_model.bin")
    refused(exported, r"holds 'pytorch_model.bin', a pickle, where weights go; .* Refused")


def test_a_pickle_named_safetensors_is_refused(exported):
    torch.save({"x": torch.zeros(1)}, exported / "model.safetensors")
    refused(exported, r"model.safetensors' is not a readable safetensors file")


def test_weights_that_do_not_match_the_recipe_are_refused(exported):
    weights = load_file(exported / "model.safetensors")
    name = next(k for k in weights if k.endswith("weight"))
    weights[name] = torch.zeros(3, 3)
    save_file(weights, exported / "model.safetensors")
    refused(exported, rf"model.safetensors does not match the model its recipe builds: 1 of another shape "
                      rf"\(first '{name}': \(3, 3\)")
    del weights[name]
    save_file(weights, exported / "model.safetensors")
    refused(exported, rf"1 missing \(first '{name}'\)")


def test_a_card_naming_another_library_is_refused(exported):
    card = (exported / "README.md").read_text().replace("library_name: cvaekit", "library_name: transformers")
    (exported / "README.md").write_text(card)
    refused(exported, "is a model for the library 'transformers' \\(its model card says so\\), not for cvaekit")


def test_a_component_that_is_not_installed_is_named_with_its_package(exported):
    config = json.loads((exported / "config.json").read_text())
    config["components"].append({"kind": "conditioner", "name": "glyph_ngram", "origin": "cvaekit-glyphs 0.3.1",
                                 "package": "cvaekit-glyphs"})
    (exported / "config.json").write_text(json.dumps(config))
    refused(exported, "needs the conditioner 'glyph_ngram', which is not installed; it comes from the package "
                      "'cvaekit-glyphs' \\(cvaekit-glyphs 0.3.1\\): pip install cvaekit-glyphs")


def test_a_folder_that_is_neither_is_refused(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "README.md").write_text("# notes\n")
    refused(tmp_path / "stuff", "is not an exported cvaekit model: it has no config.json or model.safetensors")


# ---------------------------------------------------------------------------- a pretrained text encoder


def test_a_text_encoder_named_by_hub_id_says_so_and_takes_a_local_path(tiny_clip_path, tmp_path):
    """A model trained on a hub id's text encoder, loaded where that id is not in the cache:
    the error names it and the way out; given a local copy, the very pictures of the run."""
    recipe = {
        "name": "tiny_clip_shapes", "seed": 0, "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "shapes_captions", "image_size": 16, "n_train": 64, "n_test": 16},
        "model": {"latent_dim": 4, "conditioner": {"name": "clip_text", "model": tiny_clip_path},
                  "encoder": {"name": "mlp", "hidden": 32}, "decoder": {"name": "mlp", "hidden": 32}},
        "train": {"epochs": 1, "batch_size": 32, "checkpoint_every": 1},
        "eval": {"metrics": ["nelbo"], "limit": 16, "samples_per_condition": 2, "conditions": ["a red circle"]},
    }
    run = train(recipe, progress=False)
    exported = export_run(run, tmp_path / "exported")
    assert json.loads((exported / "config.json").read_text())["text_encoder"] == tiny_clip_path
    hub_id = "openai/clip-vit-base-patch32"  # as if the run had named the hub id; not in this cache
    for name in ("recipe.yaml", "config.json"):
        (exported / name).write_text((exported / name).read_text().replace(tiny_clip_path, hub_id))
    with pytest.raises(CvaekitError, match=rf"text encoder is '{hub_id}' \(a hub id\); give a local copy of it "
                                           rf"with --text-encoder PATH"):
        load_run(exported)
    texts = ["a red circle", "a blue square"]
    expected = sample_rows(load_run(run).model, texts, 3, seed=1)
    assert same(expected, sample_rows(load_run(exported, text_encoder=tiny_clip_path).model, texts, 3, seed=1))
    result = CliRunner().invoke(app, ["generate", str(exported), *texts, "-n", "3", "--seed", "1",
                                      "--text-encoder", tiny_clip_path, "-o", str(tmp_path / "clip.png")])
    assert result.exit_code == 0, result.output


def test_the_commands_take_a_hub_id_and_write_into_a_local_copy(run, exported, tmp_path, monkeypatch):
    from cvaekit.serving.service import load_runs

    lay_out_hub_cache(tmp_path / "hub", "alice/tiny-fashion", exported)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (served,) = load_runs(["alice/tiny-fashion"], device="cpu")
    assert served.label == "alice/tiny-fashion · epoch 1"
    result = CliRunner().invoke(app, ["evaluate", "alice/tiny-fashion", "--metrics", "nelbo", "--no-figures",
                                      "--device", "cpu", "--into", str(tmp_path / "evaluated")])
    assert result.exit_code == 0, result.output
    assert "Evaluated in a local copy of alice/tiny-fashion" in " ".join(result.output.split())
    assert (tmp_path / "evaluated" / "evaluation.csv").is_file()
    result = CliRunner().invoke(app, ["fit-prior", "alice/tiny-fashion", "--prior", "mixture", "--set", "components=2",
                                      "--epochs", "1", "-q", "--device", "cpu", "--into", str(tmp_path / "fitted")])
    assert result.exit_code == 0, result.output
    assert RunDir(tmp_path / "fitted").fitted_prior(1).is_file()
    assert not list((tmp_path / "hub").rglob("*.prior.pt"))  # the cache is left as it was


def test_a_mistyped_run_path_is_a_missing_folder_not_a_download(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(CvaekitError, match="is not a cvaekit run folder"):
        load_run(tmp_path / "runs" / "quickstart-2026")
    with pytest.raises(CvaekitError, match="is not a cvaekit run folder"):
        load_run("runs/quickstart-2026")  # relative, from the test's folder: runs/ is here


def test_a_hierarchical_models_card_names_its_latent_groups(tmp_path):
    from conftest import fashion_recipe

    recipe = fashion_recipe(tmp_path, epochs=1, limit=128)
    recipe["model"].update(latent_dim=2, encoder={"name": "dense_ladder", "hidden": 16, "width": 8},
                           decoder={"name": "dense_ladder", "hidden": 16, "width": 8, "groups": 2})
    recipe["eval"].update(limit=32, metrics=["nelbo"])
    folder = export_run(train(recipe, progress=False), tmp_path / "exported")
    text = (folder / "README.md").read_text()
    assert "a new draw of its 4 latent groups, drawn top-down" in text
    assert json.loads((folder / "config.json").read_text())["latent_groups"] == 4
