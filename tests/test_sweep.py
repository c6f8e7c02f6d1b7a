"""`cvaekit sweep`: a grid of settings, one run each, one table and one figure."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import RecipeError
from cvaekit.training.sweep import grid_points, parse_grid, sweep

runner = CliRunner()


def test_parse_grid_values_and_points():
    grid = parse_grid(["model.latent_dim=16,32", "train.lr=[1.0e-3, 1.0e-4]"])
    assert grid == {"model.latent_dim": [16, 32], "train.lr": [1e-3, 1e-4]}
    assert grid_points(grid)[1] == {"model.latent_dim": 16, "train.lr": 1e-4} and len(grid_points(grid)) == 4
    for bad in ("model.latent_dim", "=1,2", "model.latent_dim="):
        with pytest.raises(RecipeError, match="key.path=value1,value2"):
            parse_grid([bad])


def test_a_bad_grid_value_fails_before_anything_trains(tmp_path, tiny_fashion):
    with pytest.raises(RecipeError, match="model.latent_dim"):
        sweep(tiny_fashion, ["model.latent_dim=8,big"])
    assert not (tmp_path / "runs").exists()


def test_two_point_sweep_writes_its_table_and_figure(tmp_path, tiny_fashion):
    tiny_fashion["train"].update(epochs=1, limit=500)
    tiny_fashion["eval"].update(metrics=["nelbo", "recon"], limit=200)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_fashion))
    result = runner.invoke(app, ["sweep", str(path), "--grid", "model.latent_dim=2,8", "--set", "train.batch_size=50", "-q"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "metrics by setting" in result.output and "recon_bce" in result.output
    folder = next((tmp_path / "runs").glob("tiny_fashion-sweep-*"))
    with (folder / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model.latent_dim"] for r in rows] == ["2", "8"]
    table = json.loads((folder / "sweep.json").read_text())
    assert table["grid"] == {"model.latent_dim": [2, 8]} and table["overrides"] == ["train.batch_size=50"]
    for row in table["rows"]:
        run = folder / row["run"]
        recipe = yaml.safe_load((run / "recipe.yaml").read_text())
        assert recipe["model"]["latent_dim"] == row["model.latent_dim"] and recipe["train"]["batch_size"] == 50
        assert row["epoch"] == 1 and row["nelbo"] > 0 and row["recon_mse"] > 0 and row["train_loss"] > 0
    figure = Image.open(folder / "samples_by_setting.png")
    assert figure.size[0] > figure.size[1]  # ten prompts across, two settings down


@pytest.mark.slow
def test_jobs_train_points_side_by_side_with_the_results_of_one_at_a_time(tmp_path, tiny_fashion):
    from cvaekit.errors import CvaekitError

    tiny_fashion["train"].update(epochs=1, limit=300)
    tiny_fashion["eval"].update(limit=100)
    one = sweep(tiny_fashion, ["model.latent_dim=2,4"], progress=False)
    two = sweep(tiny_fashion, ["model.latent_dim=2,4"], progress=False, jobs=2)
    assert [r["model.latent_dim"] for r in two.rows] == [2, 4]
    for a, b in zip(one.rows, two.rows):  # other thread counts may round differently
        assert b["nelbo"] == pytest.approx(a["nelbo"], rel=1e-3) and (two.folder / b["run"] / "checkpoints").is_dir()
    assert sorted(p.name for p in (two.folder / "logs").iterdir()) == ["point-1.log", "point-2.log"]
    with pytest.raises(CvaekitError, match=r"1 of 2 sweep points failed.*point 2 \(train.device=\"cuda:7\"\).*CUDA"):
        sweep(tiny_fashion, ["train.device=cpu,cuda:7"], progress=False, jobs=2)
    with pytest.raises(RecipeError, match="'jobs' must be a whole number of at least 1"):
        sweep(tiny_fashion, ["model.latent_dim=2,4"], progress=False, jobs=0)
