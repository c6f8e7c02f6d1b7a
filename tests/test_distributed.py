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


def _share_of_rank(rank: int, port: int, out: str) -> None:
    import os

    from cvaekit.device import Distributed
    from cvaekit.training import epoch_order

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    ddp = Distributed(torch.device("cpu"))
    shares = [epoch_order(101, gen, ddp) for gen in [torch.Generator().manual_seed(7)] for _ in range(2)]
    torch.save(shares, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_ranks_take_disjoint_shares_of_each_epoch_with_their_own_caption_draws(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_share_of_rank, args=(port, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    gen = torch.Generator().manual_seed(7)
    for epoch in range(2):
        full_order, full_draws = torch.randperm(101, generator=gen), torch.rand(101, generator=gen)
        (order0, draws0), (order1, draws1) = ranks[0][epoch], ranks[1][epoch]
        assert len(order0) == len(order1) == 50 and not set(order0.tolist()) & set(order1.tolist())
        assert torch.equal(torch.cat([order0, order1]), full_order[:100])  # each epoch reshuffled, one image left over
        assert torch.equal(torch.cat([draws0, draws1]), full_draws[:100])  # a rank's picks belong to its images
    assert not torch.equal(ranks[0][0][0], ranks[0][1][0])
