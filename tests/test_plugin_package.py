"""The example plugin package plugins/cvaekit-bagofwords: installed as a distribution, found
through its entry point with its origin and version, and its recipe trains and generates.

CI installs it (`pip install -e plugins/cvaekit-bagofwords`); when it is missing the fixture
installs it the same way, offline (no build isolation, no dependencies)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from cvaekit.serving.generate import generate
from cvaekit.plugins import load_registry
from cvaekit.store.runs import RunDir
from cvaekit.training import train

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "cvaekit-bagofwords"
META = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
QUICK = ["train.epochs=1", "train.limit=64", "train.batch_size=32", "data.n_train=64", "data.n_test=16",
         "eval.limit=16", "eval.samples_per_condition=2", "eval.metrics=[nelbo]"]


@pytest.fixture(scope="module")
def installed():
    """The plugin's distribution, installed editable into this environment if it is not yet."""
    try:
        return distribution(META["name"])
    except PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                        "-e", str(PLUGIN)], check=True)
        sys.path.insert(0, str(PLUGIN / "src"))  # the editable .pth only takes effect in new processes
        importlib.invalidate_caches()
        return distribution(META["name"])


def test_found_through_its_entry_point_with_origin_and_version(installed):
    eps = [ep for ep in installed.entry_points if ep.group == "cvaekit"]
    assert [ep.value for ep in eps] == ["cvaekit_bagofwords.plugin"]
    registry = load_registry()
    assert not registry.failures
    origin = f"{META['name']} {META['version']}"
    assert registry.get("conditioner", "char_ngram").origin == origin
    assert registry.get("injection", "gated_add").origin == origin


def test_list_components_shows_origin_and_version(installed):
    out = subprocess.run([sys.executable, "-m", "cvaekit", "list-components", "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)["components"]}
    assert rows[("conditioner", "char_ngram")]["origin"] == f"cvaekit-bagofwords {META['version']}"
    assert rows[("injection", "gated_add")]["origin"] == f"cvaekit-bagofwords {META['version']}"


def test_its_recipe_trains_a_few_steps_and_generates(installed, tmp_path):
    run = train(PLUGIN / "src" / "cvaekit_bagofwords" / "recipes" / "shapes_bow.yaml", overrides=QUICK + [f"runs_dir={tmp_path / 'runs'}"],
                progress=False)
    records = RunDir(run).records()
    assert records[0]["kind"] == "train" and records[0]["step"] == 2
    assert records[-1]["kind"] == "eval" and records[-1]["nelbo"] > 0
    assert (run / "samples" / "epoch-0001.png").is_file()
    # char_ngram takes any words, seen or not
    grid = generate(run, ["a red circle", "a purple hexagon"], n=2, out=tmp_path / "bow.png")
    assert grid.is_file()


@pytest.mark.slow
def test_the_plugins_own_tests_pass(installed):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN / "tests")],
                            capture_output=True, text=True, cwd=PLUGIN)
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_built_wheel_carries_the_recipe(tmp_path):
    """The recipe is package data inside src/cvaekit_bagofwords/, so the wheel has it, not only the source tree."""
    import shutil
    import zipfile

    source = shutil.copytree(PLUGIN, tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path / "dist")], check=True)  # built in a copy: no build/ in the repository
    (wheel,) = (tmp_path / "dist").glob("cvaekit_bagofwords-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "cvaekit_bagofwords/recipes/shapes_bow.yaml" in names, names
    assert not (PLUGIN / "recipes").exists()  # one place for it
