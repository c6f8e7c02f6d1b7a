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
    shares = [tuple(map(ddp.shard, epoch_order(101, gen))) for gen in [torch.Generator().manual_seed(7)] for _ in range(2)]
    torch.save(shares, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_ranks_take_disjoint_shares_of_each_epoch_with_their_own_caption_draws(tmp_path):
    from cvaekit.testing.local import free_port

    torch.multiprocessing.spawn(_share_of_rank, args=(free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    gen = torch.Generator().manual_seed(7)
    for epoch in range(2):
        full_order, full_draws = torch.randperm(101, generator=gen), torch.rand(101, generator=gen)
        (order0, draws0), (order1, draws1) = ranks[0][epoch], ranks[1][epoch]
        assert len(order0) == len(order1) == 50 and not set(order0.tolist()) & set(order1.tolist())
        assert torch.equal(torch.cat([order0, order1]), full_order[:100])  # each epoch reshuffled, one image left over
        assert torch.equal(torch.cat([draws0, draws1]), full_draws[:100])  # a rank's picks belong to its images
    assert not torch.equal(ranks[0][0][0], ranks[0][1][0])


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_mid_epoch_and_a_torchrun_resume_ends_bit_identical(tmp_path, tiny_fashion):
    """The terminal's SIGINT reaches torchrun and both processes: they agree on a step, process
    0 saves the place in the epoch, and resuming with torchrun ends as an uninterrupted run."""
    import os
    import signal
    import time
    from pathlib import Path

    tiny_fashion["train"].update(epochs=2, limit=1024)  # 8 steps an epoch a process
    torchrun = (shutil.which("torchrun") or f"{sys.executable} -m torch.distributed.run").split()
    launch = [*torchrun, "--standalone", "--nproc_per_node", "2"]

    def run_in(folder, *args, script=None):
        folder.mkdir()
        recipe = folder / "r.yaml"
        recipe.write_text(yaml.safe_dump({**tiny_fashion, "runs_dir": str(folder / "runs")}))
        target = [script] if script else ["-m", "cvaekit"]
        return subprocess.Popen([*launch, *target, "run", str(recipe), "-q", *args], cwd=folder, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    straight = run_in(tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stdout.read()[-3000:]
    steps = tmp_path / "steps.txt"
    os.environ["CVAEKIT_TEST_STEPS"] = str(steps)
    try:
        interrupted = run_in(tmp_path / "interrupted", script=str(Path(__file__).parent / "slow_steps.py"))
    finally:
        del os.environ["CVAEKIT_TEST_STEPS"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # Ctrl-C after the 2nd of epoch 2's 8 steps (100 ms each)
        if steps.is_file() and steps.read_text().split().count("0") >= 10:
            break
        time.sleep(0.02)
    os.killpg(interrupted.pid, signal.SIGINT)  # what the terminal does: torchrun and both processes
    output = interrupted.communicate(timeout=120)[0]
    assert interrupted.returncode != 0
    assert "torchrun --nproc_per_node 2 -m cvaekit run --resume" in output, output[-3000:]
    run = next((tmp_path / "interrupted" / "runs").iterdir())
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and 0 < state["position"]["batches"] < 8, state.get("position")

    resumed = subprocess.run([*launch, "-m", "cvaekit", "run", "--resume", str(run), "-q"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(next((tmp_path / "straight" / "runs").iterdir()) / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
