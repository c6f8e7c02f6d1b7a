"""fashion_mnist: a missing or empty data folder is an error that says how to get the data,
and nothing is written before it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.errors import DataError

ROOT_ERROR = r"Fashion-MNIST folder '/nowhere/fmnist' \(data.root\) does not exist.*apt-get install dataset-fashion-mnist"


def test_a_missing_root_says_how_to_get_the_data():
    with pytest.raises(DataError, match=ROOT_ERROR):
        fashion_mnist(root="/nowhere/fmnist")


def test_a_folder_without_the_files_says_what_it_must_hold(tmp_path):
    with pytest.raises(DataError, match=r"not found \(looked in .*\).*train-images-idx3-ubyte.*set 'data.root'"):
        fashion_mnist(root=str(tmp_path), download=False)


def test_the_cli_exits_2_and_makes_no_run(tmp_path, tiny_fashion):
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_fashion))
    result = CliRunner().invoke(app, ["run", str(recipe), "-q", "--set", "data.root=/nowhere/fmnist"])
    assert result.exit_code == 2, result.output
    assert "apt-get install dataset-fashion-mnist" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
