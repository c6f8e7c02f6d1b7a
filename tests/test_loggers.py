"""Loggers: the recipe's `log` trackers record the recipe, every figure per epoch and the grids;
one whose server is gone warns once and training finishes."""

from __future__ import annotations

import csv
import json
import socket
import struct
import warnings

import pytest

from cvaekit.errors import RecipeError
from cvaekit.recipe import load_recipe
from cvaekit.training import train
from cvaekit.training.trackers import LoggerFailed


@pytest.fixture(scope="module")
def logged(tmp_path_factory, cache_root):
    """A 2-epoch run logging to csv, tensorboard, MLflow (SQLite) and W&B (offline)."""
    from conftest import fashion_recipe

    folder = tmp_path_factory.mktemp("logged")
    recipe = fashion_recipe(folder, epochs=2, limit=200)
    recipe["eval"].update(limit=100)
    recipe["log"] = ["csv", "tensorboard", {"name": "mlflow", "tracking_uri": f"sqlite:///{folder / 'ml.db'}",
                                            "log_checkpoint": True}, "wandb"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVAEKIT_CACHE", str(cache_root))
        mp.setenv("WANDB_DIR", str(folder))
        return train(recipe, progress=False), f"sqlite:///{folder / 'ml.db'}"


def test_the_older_tensorboard_switch_and_a_single_tracker_still_read(tiny_fashion):
    assert [s.name for s in load_recipe({**tiny_fashion, "log": {"tensorboard": True}}).log] == ["tensorboard"]
    assert load_recipe({**tiny_fashion, "log": {"tensorboard": False}}).log == []
    assert [s.name for s in load_recipe({**tiny_fashion, "log": "csv"}).log] == ["csv"]
    with pytest.raises(RecipeError, match=r"Unknown key 'log.mlflow'.*log: \[tensorboard, csv\]"):
        load_recipe({**tiny_fashion, "log": {"mlflow": True}})
    with pytest.raises(RecipeError, match=r"Unknown logger 'mlfow'. Did you mean 'mlflow'\?.*'wandb'"):
        load_recipe({**tiny_fashion, "log": ["mlfow"]})


@pytest.mark.slow
def test_mlflow_holds_the_recipe_every_figure_per_epoch_and_the_grids(logged):
    from mlflow.tracking import MlflowClient

    run_path, uri = logged
    client = MlflowClient(uri)
    [found] = client.search_runs([client.get_experiment_by_name("cvaekit").experiment_id])
    assert found.info.run_name == run_path.name and found.info.status == "FINISHED"
    assert found.data.params["train.lr"] == "0.001" and found.data.params["model.encoder.name"] == "mlp"
    losses = client.get_metric_history(found.info.run_id, "train/loss")
    assert [m.step for m in losses] == [1, 2] and losses[1].value < losses[0].value
    assert [m.step for m in client.get_metric_history(found.info.run_id, "eval/nelbo")] == [1, 2]
    records = [json.loads(line) for line in (run_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[0].value == pytest.approx(records[0]["loss"])
    artifacts = {a.path for folder in ("samples", "reconstructions", "checkpoints")
                 for a in client.list_artifacts(found.info.run_id, folder)}
    assert {"samples/epoch-0001.png", "reconstructions/epoch-0002.png", "checkpoints/last.pt"} <= artifacts


def _wandb_records(path):
    """The records of a W&B offline run file (a LevelDB-style log of 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data, out, chunk = path.read_bytes(), [], b""
    pos = 7  # ':W&B', a magic number and a version
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


@pytest.mark.slow
def test_wandb_offline_keeps_the_history_in_the_run_folder(logged):
    run_path, _ = logged
    [file] = run_path.glob("wandb/offline-run-*/run-*.wandb")
    records = _wandb_records(file)
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert [h["_step"] for h in history] == [1, 2]
    assert all({"train/loss", "eval/nelbo"} <= set(h) and h["samples/_type"] == "image-file" for h in history)
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["train.lr"] == 0.001 and config["model.encoder.name"] == "mlp"


@pytest.mark.slow
def test_csv_and_tensorboard_hold_the_figures(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_path, _ = logged
    with (run_path / "csv" / "figures.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows if r["name"] == "eval/nelbo"] == ["1", "2"]
    params = dict(csv.reader((run_path / "csv" / "params.csv").open()))
    assert params["data.name"] == "fashion_mnist"
    acc = EventAccumulator(str(run_path / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2] and "samples" in acc.Tags()["images"]


def test_only_process_0_builds_the_loggers(tiny_fashion, registry):
    from cvaekit.training.trackers import Trackers

    recipe = load_recipe({**tiny_fashion, "log": ["csv", "tensorboard"]}, registry=registry)
    assert [name for name, _ in Trackers.of(recipe, registry, main=True).loggers] == ["csv", "tensorboard"]
    assert Trackers.of(recipe, registry, main=False).loggers == []  # under torchrun, the others log nothing


@pytest.mark.slow
def test_a_logger_whose_server_is_gone_warns_once_and_training_finishes(tiny_fashion):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tiny_fashion["train"].update(epochs=2, limit=100)
    tiny_fashion["eval"].update(limit=50)
    tiny_fashion["log"] = [{"name": "mlflow", "tracking_uri": f"http://127.0.0.1:{port}", "retries": 0}, "csv"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(tiny_fashion, progress=False)
    failed = [w for w in caught if issubclass(w.category, LoggerFailed)]
    assert len(failed) == 1 and "The logger 'mlflow' failed in start()" in str(failed[0].message)
    assert (run / "checkpoints" / "epoch-0002.pt").is_file()
    assert "eval/nelbo" in (run / "csv" / "figures.csv").read_text()  # the other logger went on
