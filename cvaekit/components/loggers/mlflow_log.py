"""MLflow: a run per training run, in a local SQLite store or on any tracking server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cvaekit.runtime.optional import require
from cvaekit.store.tracking import Logger

STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "stopped": "KILLED"}


class MLflowLog(Logger):
    """An MLflow run: the recipe as parameters, every figure per epoch, the grids as artifacts.

    tracking_uri: a tracking server (http://host:5000), a database (sqlite:///runs/mlflow.db) or a folder; null: sqlite:///<runs_dir>/mlflow.db, beside the run folders (`mlflow ui --backend-store-uri` it).
    experiment: the MLflow experiment the run goes in (made if missing).
    log_checkpoint: also upload the last checkpoint when training ends.
    retries: attempts of a request to a tracking server before the logger gives up (and training goes on without it).
    timeout: seconds a request to a tracking server may take."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "cvaekit", log_checkpoint: bool = False,
                 retries: int = 2, timeout: float = 10.0):
        self.uri, self.experiment, self.log_checkpoint = tracking_uri, experiment, log_checkpoint
        self.retries, self.timeout = retries, timeout
        self.client, self.run_id = None, None

    def start(self, run: Path, params: dict[str, Any]) -> None:
        tracking = require("mlflow.tracking", "mlflow", "The logger 'mlflow'")
        entities = require("mlflow.entities", "mlflow", "The logger 'mlflow'")
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(self.retries)  # read by mlflow at each request
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(self.timeout))
        runs_dir = Path(run).resolve().parent
        self.client = tracking.MlflowClient(self.uri or f"sqlite:///{runs_dir / 'mlflow.db'}")
        experiment = self._experiment(runs_dir)
        self.run_id = self.client.create_run(experiment, run_name=Path(run).name, tags={"cvaekit.run": str(run)}).info.run_id
        items = [entities.Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters per request
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _experiment(self, runs_dir: Path) -> str:
        """The experiment's id; made (its artifacts beside the runs for a local store) if missing."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        where = None if self.uri else (runs_dir / "mlflow-artifacts").as_uri()
        try:
            return self.client.create_experiment(self.experiment, artifact_location=where)
        except Exception:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def epoch(self, epoch: int, figures: dict[str, float]) -> None:
        entities = require("mlflow.entities", "mlflow", "The logger 'mlflow'")
        metrics = [entities.Metric(k, float(v), 0, epoch) for k, v in figures.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def checkpoint(self, epoch: int, figures: dict[str, float], images: dict[str, Path]) -> None:
        self.epoch(epoch, figures)
        for name, path in images.items():
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_path=name)

    def close(self, status: str, checkpoint: Path | None) -> None:
        if self.run_id is None:
            return
        if self.log_checkpoint and checkpoint is not None and checkpoint.is_file():
            self.client.log_artifact(self.run_id, str(checkpoint), artifact_path="checkpoints")
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
