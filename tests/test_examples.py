"""The scripts in examples/ run (in this process, with tiny budgets) and leave what they say."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from cvaekit.store.runs import RunDir

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, args: list[str], monkeypatch, capsys) -> list[str]:
    """Run examples/<name> as `python examples/<name> ARGS`; return its printed lines."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out.strip().splitlines()


@pytest.fixture
def trained(tmp_path, monkeypatch, capsys) -> Path:
    out = run_example("train_from_recipe.py", ["--epochs", "1", "--n-train", "64", "--runs-dir", str(tmp_path / "runs")],
                      monkeypatch, capsys)
    return Path(out[-1])


def test_train_from_recipe_object(trained):
    run = RunDir(trained)
    assert run.recipe_file.is_file() and run.last.is_file()
    assert [r["kind"] for r in run.records()] == ["train", "eval"]
    assert (trained / "samples" / "epoch-0001.png").is_file()


def test_generate_from_run(trained, tmp_path, monkeypatch, capsys):
    out = run_example("generate_from_run.py", [str(trained), "a red circle", "a small blue square", "-n", "2",
                                               "-o", str(tmp_path / "grid.png")], monkeypatch, capsys)
    assert out[0].startswith("shapes_from_python: epoch 1 from ")
    assert Path(out[-1]) == tmp_path / "grid.png" and (tmp_path / "grid.png").stat().st_size > 0


def test_register_at_runtime(tmp_path, monkeypatch, capsys):
    out = run_example("register_at_runtime.py", ["--epochs", "1", "--n-train", "64", "--runs-dir", str(tmp_path / "runs")],
                      monkeypatch, capsys)
    run = RunDir(Path(out[-1]))
    assert run.path.name.startswith("hashed_words_shapes-")
    assert "name: hashed_words" in run.recipe_file.read_text()
    assert run.records()[-1]["nelbo"] > 0
