import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from cvaekit.checkpoint import load_checkpoint
from cvaekit.runs import RunDir


@pytest.mark.slow
def test_torchrun_two_processes_train_one_run(tmp_path, tiny_fashion):
    """Two CPU processes (gloo on loopback) share each epoch; process 0 writes one run folder."""
    tiny_fashion["train"]["epochs"] = 2
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_fashion))
    torchrun = shutil.which("torchrun") or f"{sys.executable} -m torch.distributed.run"
    cmd = [*torchrun.split(), "--standalone", "--nproc_per_node", "2", "-m", "cvaekit", "run", str(recipe), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    records = RunDir(runs[0]).records()
    train = [r for r in records if r["kind"] == "train"]
    assert [r["epoch"] for r in train] == [1, 2] and train[1]["loss"] < train[0]["loss"]
    # each process took half of the 2,000 images per epoch: 16 steps of 64, not 32
    assert train[0]["step"] == 1000 // 64 + 1
    state = load_checkpoint(runs[0] / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values())
