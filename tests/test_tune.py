"""`cvaekit tune`: a search space over recipe keys, trials as run folders, pruning, and workers
sharing one study in SQLite or in a real PostgreSQL server (one killed mid-trial included)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import RecipeError
from cvaekit.training.tune import tune
from cvaekit.training.tune_space import read_space

optuna = pytest.importorskip("optuna")
runner = CliRunner()
SPACE = {"metric": "nelbo", "params": {"train.lr": [0.01, 1.0e-6]}}


@pytest.fixture
def tiny(tmp_path, tiny_fashion):
    """The tiny recipe, one short epoch per trial, as a file the worker processes read."""
    tiny_fashion["train"].update(epochs=1, limit=100, batch_size=50)
    tiny_fashion["eval"].update(limit=50, samples_per_condition=2)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(tiny_fashion))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    return tmp_path


def test_a_bad_space_names_the_key_and_the_choices(tiny_fashion):
    with pytest.raises(RecipeError, match=r"Unknown key 'parms'.*Did you mean 'params'"):
        read_space({"parms": {}})
    with pytest.raises(RecipeError, match=r"'params.train.lr' must be a list of choices or a mapping with 'type'"):
        read_space({"params": {"train.lr": {"type": "number", "low": 1, "high": 2}}})
    with pytest.raises(RecipeError, match=r"low \(0.0\) must not be above high.*log scale both must be above 0"):
        read_space({"params": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}})
    with pytest.raises(RecipeError, match=r"'pruner'.*must be one of 'hyperband', 'median', 'none'"):
        read_space({"params": {"train.lr": [1]}, "pruner": "asha"})
    with pytest.raises(RecipeError, match=r"train.bach_size=8 does not make a valid recipe.*Unknown key 'train.bach_size'"):
        tune(tiny_fashion, {"params": {"train.bach_size": [8, 16]}}, 2, progress=False)


def _study(url: str, name: str):
    return optuna.load_study(study_name=name, storage=url)


def _finished(study) -> list:
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


@pytest.mark.slow
def test_pruning_stops_a_hopeless_trial_and_the_best_recipe_and_plots_are_written(tiny):
    url = f"sqlite:///{tiny / 'prune.db'}"
    study = optuna.create_study(storage=url, study_name="prune")
    study.enqueue_trial({"train.lr": 0.01})  # a good trial first, then a hopeless one
    study.enqueue_trial({"train.lr": 1.0e-6})
    space = {**SPACE, "pruner": {"name": "median", "n_startup_trials": 1}}
    (tiny / "space.yaml").write_text(yaml.safe_dump(space))
    result = runner.invoke(app, ["tune", str(tiny / "recipe.yaml"), "--space", str(tiny / "space.yaml"), "--trials", "2",
                                 "--storage", url, "--study", "prune", "--set", "train.epochs=2", "-q"], terminal_width=200)
    assert result.exit_code == 0, result.output
    trials = _study(url, "prune").get_trials()
    assert [(t.params["train.lr"], t.state.name, len(t.intermediate_values)) for t in trials] == [
        (0.01, "COMPLETE", 2), (1.0e-6, "PRUNED", 1)]
    assert "pruned" in result.output and "complete" in result.output
    folder = tiny / "runs" / "tiny_fashion-tune-prune"
    assert yaml.safe_load((folder / "best.yaml").read_text())["train"]["lr"] == 0.01
    for t in trials:  # every trial a normal run folder, linked from the trial
        assert (t.user_attrs["run"].startswith(str(folder / "trials"))
                and yaml.safe_load(Path(t.user_attrs["run"], "recipe.yaml").read_text())["train"]["lr"] == t.params["train.lr"])
    assert (folder / "plots" / "history.png").is_file() and (folder / "plots" / "parallel_coordinates.png").is_file()


def _worker(tiny, url: str, study: str, trials: int, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "cvaekit", "tune", str(tiny / "recipe.yaml"), "--space", str(tiny / "space.yaml"),
               "--trials", str(trials), "--storage", url, "--study", study, "--heartbeat", "1", "-q", *extra]
    return subprocess.Popen(command, cwd=tiny, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _running_trial(url: str, study: str, worker: subprocess.Popen, timeout: float = 240):
    """The number of the first trial whose run has started training."""
    end = time.time() + timeout
    while time.time() < end and worker.poll() is None:
        try:
            running = [t for t in _study(url, study).get_trials() if t.state.name == "RUNNING" and "run" in t.user_attrs]
        except KeyError:  # the study is not made yet
            running = []
        if running:
            return running[0].number
        time.sleep(0.1)
    raise AssertionError(f"no trial started: {worker.communicate()[0] if worker.poll() is not None else 'timeout'}")


@pytest.fixture(scope="module")
def postgres_url():
    from postgres import postgres_server

    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server for the many-machines tests: {exc}")


@pytest.mark.slow
def test_two_workers_sharing_postgres_finish_the_trials_none_lost_or_twice(tiny, postgres_url):
    workers = [_worker(tiny, postgres_url, "two", 4) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = _study(postgres_url, "two").get_trials()
    done = _finished(_study(postgres_url, "two"))
    assert len(done) == 4 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "FAIL")  # only a step back, untrained
    runs = [t.user_attrs["run"] for t in done]
    assert len(set(runs)) == 4 and all(yaml.safe_load(Path(r, "recipe.yaml").read_text())["train"]["lr"] == t.params["train.lr"]
                                       for r, t in zip(runs, done))
    assert all("study two: trials" in out for out in outputs)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_has_its_trial_failed_and_retried(tiny, postgres_url):
    first = _worker(tiny, postgres_url, "killed", 1, "--set", "train.epochs=200")  # long enough to be caught running
    killed = _running_trial(postgres_url, "killed", first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    second = _worker(tiny, postgres_url, "killed", 1)
    out = second.communicate(timeout=600)[0]
    assert second.returncode == 0, out
    trials = {t.number: t for t in _study(postgres_url, "killed").get_trials()}
    assert trials[killed].state.name == "FAIL"
    [retry] = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert retry.state.name == "COMPLETE" and retry.params == trials[killed].params
    assert len(_finished(_study(postgres_url, "killed"))) == 1 and "RUNNING" not in {t.state.name for t in trials.values()}


@pytest.mark.slow
def test_ctrl_c_fails_only_the_running_trial_and_the_study_goes_on(tiny):
    url = f"sqlite:///{tiny / 'stopped.db'}"
    worker = _worker(tiny, url, "stopped", 1, "--set", "train.epochs=200")  # long enough to be caught running
    stopped = _running_trial(url, "stopped", worker)
    worker.send_signal(signal.SIGINT)
    out = worker.communicate(timeout=120)[0]
    assert worker.returncode == 130 and "The study stays usable" in out, out
    trial = _study(url, "stopped").trials[stopped]
    assert trial.state.name == "FAIL" and trial.user_attrs["interrupted"]
    tune(tiny / "recipe.yaml", tiny / "space.yaml", 1, storage=url, study="stopped", progress=False, report=False)
    assert len(_finished(_study(url, "stopped"))) == 1
