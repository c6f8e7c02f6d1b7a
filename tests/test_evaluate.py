"""`cvaekit evaluate` on runs with several checkpoints; progress figures and TensorBoard."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import CvaekitError
from cvaekit.assembly import load_run
from cvaekit.evaluation.checkpoints import evaluate, metric_specs
from cvaekit.plugins import get_registry
from cvaekit.store.runs import RunDir
from cvaekit.training import train

runner = CliRunner()


@pytest.fixture(scope="module")
def run3(tmp_path_factory, cache_root):
    """A Fashion-MNIST run with checkpoints at epochs 1, 2 and 3, logging to TensorBoard."""
    from conftest import fashion_recipe

    recipe = fashion_recipe(tmp_path_factory.mktemp("evaluated"), epochs=3, limit=1000)
    recipe["eval"].update(metrics=["nelbo", "recon", {"name": "fid", "features": "random", "n": 200}], limit=200)
    recipe["log"] = {"tensorboard": True}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVAEKIT_CACHE", str(cache_root))
        return train(recipe, progress=False)


def test_evaluate_cli_prints_and_writes_the_table_by_checkpoint(run3):
    result = runner.invoke(app, ["evaluate", str(run3), "--no-figures"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for column in ("epoch", "nelbo", "recon_bce", "recon_mse", "fid_random"):
        assert column in result.output
    with (run3 / "evaluation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    table = json.loads((run3 / "evaluation.json").read_text())
    assert table["metrics"] == ["nelbo", "recon_bce", "recon_mse", "fid_random"]
    # the same numbers the training loop logged at each checkpoint (same seed, same test images)
    logged = {r["epoch"]: r for r in RunDir(run3).records() if r["kind"] == "eval"}
    for row in table["rows"]:
        for key in table["metrics"]:
            assert row[key] == pytest.approx(logged[row["epoch"]][key], rel=1e-4)
    assert table["rows"][-1]["nelbo"] < table["rows"][0]["nelbo"]


def test_evaluate_chooses_checkpoints_and_metrics(run3):
    last = evaluate(run3, "last", ["recon"], figures=False)
    assert [r["epoch"] for r in last.rows] == [3] and last.columns == ["recon_bce", "recon_mse"]
    some = evaluate(run3, "1,3", ["nelbo"], figures=False)
    assert [r["epoch"] for r in some.rows] == [1, 3]
    with pytest.raises(CvaekitError, match="Kept epochs: 1, 2, 3"):
        evaluate(run3, "7", figures=False)


def test_evaluate_unknown_metric_is_a_clear_error(run3):
    result = runner.invoke(app, ["evaluate", str(run3), "--metrics", "nelbo,fdi", "--no-figures"])
    assert result.exit_code == 2
    assert "Unknown metric 'fdi'" in result.output and "Did you mean 'fid'" in result.output


def test_evaluate_takes_metrics_with_parameters_as_a_recipe_lists_them(run3):
    registry = get_registry()
    recipe = load_run(run3, None, registry).recipe
    specs = metric_specs(recipe, ["fid", {"name": "fid", "features": "random", "n": 50}], registry)
    assert specs[0][0] == "fid" and specs[0][1]["n"] == 200  # a name takes the recipe's parameters
    assert specs[1][0] == "fid" and specs[1][1] == {**specs[0][1], "n": 50}
    result = runner.invoke(app, ["evaluate", str(run3), "--checkpoints", "last", "--no-figures",
                                 "--metrics", "[recon, {name: fid, features: random, n: 50}]"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "fid_random" in result.output and "recon_bce" in result.output


@pytest.mark.parametrize("choice, message", [
    ("[{name: fid, nn: 3}]", "Unknown key '--metrics.0.nn' for metric 'fid'"),
    ("[nelbo, {name: ", "--metrics is not a YAML list"),
    ("[nelbo, [fid]]", "--metrics must list metric names or mappings with 'name'"),
])
def test_a_bad_metrics_list_is_a_clear_error(run3, choice, message):
    result = runner.invoke(app, ["evaluate", str(run3), "--no-figures", "--metrics", choice], terminal_width=300)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_progress_figures_have_a_row_per_checkpoint(run3):
    one = evaluate(run3, "3", ["nelbo"]).files
    figure = run3 / "samples_by_epoch.png"
    assert figure in one
    height_one = Image.open(figure).size[1]
    evaluate(run3, "all", ["nelbo"])
    assert Image.open(figure).size[1] > 2 * height_one * 0.8
    assert Image.open(run3 / "reconstructions_by_epoch.png").size[1] > height_one


def test_training_writes_progress_figures_and_tensorboard_events(run3):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((run3 / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(run3 / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    assert [e.step for e in acc.Scalars("eval/nelbo")] == [1, 2, 3]
    assert {"samples", "reconstructions"} <= set(tags["images"])
    assert (run3 / "samples_by_epoch.png").is_file() and (run3 / "reconstructions_by_epoch.png").is_file()


@pytest.mark.slow
def test_evaluate_a_caption_run_with_clip_score_and_fid(tmp_path, tiny_clip_path):
    recipe = {
        "name": "tiny_shapes", "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "shapes_captions", "image_size": 32, "n_train": 128, "n_test": 32},
        "model": {"latent_dim": 8, "conditioner": {"name": "learned_text", "dim": 16},
                  "encoder": {"name": "conv", "channels": [8, 16, 16]},
                  "decoder": {"name": "deconv", "channels": [8, 16, 16], "hidden": 64}},
        "train": {"epochs": 2, "batch_size": 64, "checkpoint_every": 1},
        "eval": {"samples_per_condition": 2,
                 "metrics": [{"name": "clip_score", "model": tiny_clip_path, "n": 16},
                             {"name": "fid", "features": "random"}]},
    }
    run = train(recipe, progress=False)
    result = runner.invoke(app, ["evaluate", str(run)], terminal_width=200)
    assert result.exit_code == 0, result.output
    table = json.loads((run / "evaluation.json").read_text())
    assert [r["epoch"] for r in table["rows"]] == [1, 2]
    assert table["metrics"] == ["clip_cosine", "clip_score", "clip_cosine_real", "clip_cosine_shuffled", "fid_random"]
    for row in table["rows"]:
        assert -1 <= row["clip_cosine"] <= 1 and row["clip_score"] == pytest.approx(max(100 * row["clip_cosine"], 0))
    assert (run / "samples_by_epoch.png").is_file()


def test_evaluate_a_run_whose_recipe_names_no_metrics_asks_which(tmp_path, tiny_fashion):
    tiny_fashion["train"]["epochs"] = 1
    tiny_fashion["eval"]["metrics"] = []
    run = train(tiny_fashion, progress=False)
    with pytest.raises(CvaekitError, match=r"names no metrics.*--metrics.*Valid metrics: .*'nelbo'"):
        evaluate(run, figures=False)
    assert [r["epoch"] for r in evaluate(run, metrics=["nelbo"], figures=False).rows] == [1]


def test_evaluating_one_metric_at_the_last_checkpoint_keeps_the_rest_of_the_table(run3):
    full = evaluate(run3, "all", ["nelbo", "recon"], figures=False)
    before = {r["epoch"]: r for r in full.table}
    table = json.loads((run3 / "evaluation.json").read_text())
    for row in table["rows"]:
        if row["epoch"] == 3:
            row["nelbo"] = 999.0  # a stale value the next evaluation measures again
    (run3 / "evaluation.json").write_text(json.dumps(table))

    result = runner.invoke(app, ["evaluate", str(run3), "--metrics", "nelbo", "--checkpoints", "last", "--no-figures"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "rows, these merged in" in result.output
    after = {r["epoch"]: r for r in json.loads((run3 / "evaluation.json").read_text())["rows"]}
    assert sorted(after) == [1, 2, 3]  # the epochs this evaluation did not measure are still there
    assert after[3]["nelbo"] == pytest.approx(before[3]["nelbo"], rel=1e-6)  # measured again, replaced
    for epoch in (1, 2, 3):  # every other measurement as it was
        assert after[epoch]["recon_bce"] == before[epoch]["recon_bce"]
        assert (after[epoch]["prior"], after[epoch]["test_images"]) == ("trained", 200)
    with (run3 / "evaluation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["prior"], r["test_images"]) for r in rows] == [(str(e), "trained", "200") for e in (1, 2, 3)]
    assert rows[0]["recon_bce"] and float(rows[2]["nelbo"]) == pytest.approx(before[3]["nelbo"], rel=1e-6)

    fewer = evaluate(run3, "1", ["nelbo"], limit=50, figures=False)  # another number of test images: its own row
    assert [(r["epoch"], r["test_images"]) for r in fewer.table] == [(1, 50), (1, 200), (2, 200), (3, 200)]


def test_a_table_that_cannot_be_read_is_kept_aside_and_an_old_one_is_merged(run3):
    stem = run3 / "evaluation"
    stem.with_suffix(".json").write_text("{ not a table")
    result = evaluate(run3, "2", ["nelbo"], figures=False)
    kept = list(run3.glob("evaluation-unreadable-*.json"))
    assert len(kept) == 1 and kept[0].read_text() == "{ not a table"
    assert "kept as evaluation-unreadable-" in result.notes[0]
    assert [r["epoch"] for r in result.table] == [2]
    for path in kept + list(run3.glob("evaluation-unreadable-*.csv")):
        path.unlink()

    old = {"run": str(run3), "recipe": "tiny_fashion", "test_images": 200, "keys": ["epoch"],  # as 0.2.0 wrote it
           "metrics": ["fid_random"], "rows": [{"epoch": 1, "checkpoint": "x", "fid_random": 12.5}]}
    stem.with_suffix(".json").write_text(json.dumps(old))
    merged = evaluate(run3, "1", ["nelbo"], figures=False).table
    assert [(r["epoch"], r["prior"], r.get("fid_random")) for r in merged] == [(1, "", 12.5), (1, "trained", None)]
    stem.with_suffix(".json").unlink()
    stem.with_suffix(".csv").write_text("epoch,fid_random\n1,12.5\n")  # only the CSV left: read back, not lost
    merged = evaluate(run3, "1", ["nelbo"], figures=False).table
    assert merged[0]["fid_random"] == 12.5 and merged[0]["epoch"] == 1


def test_evaluate_names_the_prior_choices(run3):
    result = runner.invoke(app, ["evaluate", str(run3), "--prior", "fited", "--no-figures"])
    assert result.exit_code == 2 and "Unknown prior choice 'fited'" in result.output and "'trained', 'fitted'" in result.output
    result = runner.invoke(app, ["evaluate", str(run3), "--prior", "fitted", "--no-figures"])
    assert result.exit_code == 2
    assert "epoch 1 has no fitted prior" in result.output and "cvaekit fit-prior" in result.output
