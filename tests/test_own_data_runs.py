"""Each data set of a user's own pictures trains through `cvaekit run` (the loss falls);
generate takes a class word on a labelled folder and a caption on a captioned one; and
`cvaekit prepare` fills the image and caption caches so that the run after it encodes
nothing again."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cvaekit.caches import text as text_cache
from cvaekit.cli import app
from cvaekit.caches.images import SkippedImagesWarning
from cvaekit.store.runs import RunDir
from own_pictures import COLOURS, captions_of, write_caption_folder, write_hf_dataset, write_labelled_folder, write_mnist_root

runner = CliRunner()


def write_recipe(tmp_path, data: dict, conditioner="onehot", epochs: int = 6) -> str:
    recipe = {"name": f"own_{data['name']}", "seed": 0, "runs_dir": str(tmp_path / "runs"),
              "data": {"progress": False, **data},
              "model": {"latent_dim": 4, "conditioner": conditioner,
                        "encoder": {"name": "mlp", "hidden": 64}, "decoder": {"name": "mlp", "hidden": 64}},
              "train": {"epochs": epochs, "batch_size": 8, "lr": 3e-3, "checkpoint_every": epochs},
              "eval": {"metrics": ["nelbo"], "samples_per_condition": 2}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def run(recipe: str, falls_to: float = 0.9):
    """Train through the CLI; the last epoch's loss is below `falls_to` times the first's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        result = runner.invoke(app, ["run", recipe, "-q"])
    assert result.exit_code == 0, result.output
    folder = RunDir(Path(result.output.split("Run folder:", 1)[1].strip().replace("\n", "")))
    losses = [r["loss"] for r in folder.records() if r["kind"] == "train"]
    assert losses[-1] < losses[0] * falls_to, losses
    return folder.path


@pytest.mark.slow
def test_labelled_folder_trains_and_generates_a_class_word(tmp_path):
    root = write_labelled_folder(tmp_path / "pics", per_class=8, corrupt=1)
    folder = run(write_recipe(tmp_path, {"name": "image_folder", "root": str(root), "image_size": 12}))
    made = runner.invoke(app, ["generate", str(folder), "red", "blue", "-n", "2", "-o", str(tmp_path / "rb.png")])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "rb.png").stat().st_size > 0
    wrong = runner.invoke(app, ["generate", str(folder), "purple", "-o", str(tmp_path / "p.png")])
    assert wrong.exit_code == 2
    assert "'purple' is not a class this model knows" in wrong.output and "'blue', 'green', 'red'" in wrong.output


@pytest.mark.slow
def test_captioned_folder_trains_and_generates_a_caption(tmp_path):
    root = write_caption_folder(tmp_path / "caps", n=24, corrupt=1)
    folder = run(write_recipe(tmp_path, {"name": "image_captions", "root": str(root), "image_size": 12},
                              conditioner={"name": "learned_text", "dim": 16}))
    made = runner.invoke(app, ["generate", str(folder), "a green picture", "-n", "2", "-o", str(tmp_path / "g.png")])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "g.png").is_file()


@pytest.mark.slow
def test_hf_dataset_and_torchvision_train(tmp_path):
    saved = write_hf_dataset(tmp_path / "saved", n=24)
    run(write_recipe(tmp_path, {"name": "hf_dataset", "path": str(saved), "label_column": "label",
                                "image_size": 12}))
    mnist = write_mnist_root(tmp_path / "tv", n_train=40, n_test=10)
    folder = run(write_recipe(tmp_path, {"name": "torchvision", "dataset": "MNIST", "root": str(mnist)}))
    made = runner.invoke(app, ["generate", str(folder), "seven", "3", "-n", "2", "-o", str(tmp_path / "7.png")])
    assert made.exit_code == 0, made.output


@pytest.mark.slow
def test_prepare_then_run_encodes_nothing_again(tmp_path, tiny_clip_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))  # no caption cached by another test
    root = write_caption_folder(tmp_path / "caps", n=20)
    recipe = write_recipe(tmp_path, {"name": "image_captions", "root": str(root), "image_size": 12},
                          conditioner={"name": "clip_text", "model": tiny_clip_path}, epochs=3)
    first = runner.invoke(app, ["prepare", recipe, "-q"])
    assert first.exit_code == 0, first.output
    distinct = len({c for k in range(20) for c in captions_of(list(COLOURS)[k % 3], k)})
    assert f"{distinct} distinct: 0 already cached, {distinct} encoded now" in first.output
    assert "18 train, 2 test" in first.output
    assert list((tmp_path / "cache" / "image_captions").glob("*/images.u8"))
    assert list((tmp_path / "cache" / "embeddings").glob("*/shard-*.pt"))

    text_cache._shared.clear()  # as in a new process: only what is on disk counts
    again = runner.invoke(app, ["prepare", recipe, "-q"])
    assert f"{distinct} distinct: {distinct} already cached, 0 encoded now" in again.output

    text_cache._shared.clear()
    run(recipe, falls_to=1.0)
    (cache,) = text_cache._shared.values()
    assert cache.encoded == 0  # the run found every caption ready


def test_prepare_says_when_there_is_nothing_to_encode(tmp_path):
    root = write_labelled_folder(tmp_path / "pics", per_class=3)
    result = runner.invoke(app, ["prepare", write_recipe(tmp_path, {"name": "image_folder", "root": str(root),
                                                                    "image_size": 8}), "-q"])
    assert result.exit_code == 0, result.output
    assert "nothing to encode" in result.output and "8 train, 1 test" in result.output
    missing = runner.invoke(app, ["prepare", write_recipe(tmp_path, {"name": "image_folder",
                                                                     "root": str(tmp_path / "none")})])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_the_command_shows_cvaekits_warnings_as_one_clean_line(tmp_path):
    import os
    import subprocess
    import sys

    root = write_labelled_folder(tmp_path / "pics", per_class=3, corrupt=1)
    (root / "red" / "notes.txt").write_text("not a picture")
    recipe = write_recipe(tmp_path, {"name": "image_folder", "root": str(root), "image_size": 8})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "cvaekit", "prepare", recipe, "-q"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any(line.startswith("Warning: Skipped 1 unreadable image(s) in '") and line.endswith("broken0.jpg")
               for line in lines), done.stderr
    assert any(line.startswith("Warning: Ignored 1 file(s) in '") and line.endswith("red/notes.txt")
               for line in lines), done.stderr
    assert "SkippedImagesWarning" not in done.stderr and ".py:" not in done.stderr and "warnings.warn" not in done.stderr
    assert len(lines) == 2, done.stderr  # nothing else: no source lines, no bars


def test_own_labelled_measures_cond_accuracy_on_a_labelled_folder(tmp_path):
    from cvaekit.evaluation.checkpoints import evaluate
    from cvaekit.recipe import load_recipe
    from cvaekit.training import train

    recipe_file = Path(__file__).resolve().parents[1] / "recipes" / "own_labelled.yaml"
    root = write_labelled_folder(tmp_path / "pics", per_class=10)
    recipe = load_recipe(recipe_file, [f"data.root={root}", "data.image_size=16", "data.progress=false",
                                       f"runs_dir={tmp_path / 'runs'}", "model.encoder.channels=[8, 16]",
                                       "model.decoder.channels=[8, 16]", "train.epochs=1", "train.batch_size=8",
                                       "eval.samples_per_condition=2"])
    assert "cond_accuracy" in [m.name for m in recipe.eval.metrics]
    run = train(recipe, progress=False)
    (row,) = evaluate(run, figures=False).rows
    assert 0 <= row["cond_accuracy"] <= 1 and 0 <= row["judge_accuracy"] <= 1
    assert {"nelbo", "recon_bce"} <= set(row)
