import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.store.runs import RunDir


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

    from cvaekit.runtime.device import Distributed
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


def _fit_in_rank(rank: int, port: int, out: str) -> None:
    import os

    from cvaekit.components.priors.mixture import MixturePrior
    from cvaekit.core.condition import Condition
    from cvaekit.runtime.device import Distributed
    from cvaekit.errors import CvaekitError
    from cvaekit.training.codes import Codes
    from cvaekit.training.fit_prior import _fit

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    ddp = Distributed(torch.device("cpu"))
    outcomes = []
    for poisoned in (False, True):
        torch.manual_seed(rank)  # each process its own codes and its own first weights
        labels = torch.arange(2).repeat(64)
        mu = 3.0 * torch.eye(2)[labels] + 0.1 * torch.randn(len(labels), 2)
        if poisoned and rank == 1:
            mu[5] = float("inf")
        codes = Codes(mu, torch.full_like(mu, -4.0), Condition.of(torch.eye(2)[labels]))
        prior = MixturePrior(cond_dim=2, latent_dim=2, components=2, hidden=16)
        ddp.same_weights(prior)
        try:
            outcomes.append(_fit(prior, codes, codes, epochs=3, lr=1e-2, batch_size=32, seed=rank, progress=False,
                                 ddp=ddp))
        except CvaekitError as exc:
            outcomes.append(str(exc))
    # training: only process 1's loss became infinite, at step 5; both stop there, naming it
    from types import SimpleNamespace

    from cvaekit.training import TrainingDiverged, TrainingLoop

    recipe = SimpleNamespace(train=SimpleNamespace(grad_clip=None, blowup_factor=1000.0, lr=1e-3))
    loop = SimpleNamespace(ddp=ddp, recipe=recipe, state=SimpleNamespace(lowest_loss=None),
                           run=SimpleNamespace(last=Path(out) / "nothing-saved.pt"),
                           interrupts=SimpleNamespace(requested=False))
    bad_step = torch.tensor(5 if rank == 1 else -1)
    try:
        TrainingLoop._agree(loop, 2, bad_step, torch.tensor(float("inf") if rank == 1 else 0.0))
        outcomes.append("went on")
    except TrainingDiverged as exc:
        outcomes.append(str(exc))
    torch.save(outcomes, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_processes_stay_in_step_and_a_loss_diverging_in_one_stops_all(tmp_path):
    """Two processes fit one prior, each on its own codes: they start from process 0's weights,
    average their gradients, and end with the same weights. A loss that diverges in one of
    them, fitting or training, stops both with the error (neither waits for the other)."""
    from cvaekit.testing.local import free_port

    torch.multiprocessing.spawn(_fit_in_rank, args=(free_port(), str(tmp_path)), nprocs=2)
    (a, a_poisoned, a_trained), (b, b_poisoned, b_trained) = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and torch.isfinite(a[k]).all() for k in a)
    assert a_poisoned == b_poisoned and "fit-prior: the loss became inf in epoch 1" in a_poisoned
    assert a_trained == b_trained
    assert a_trained.startswith("The loss became inf at epoch 2, step 5: training diverged and stopped there. "
                                "Nothing had been saved yet.")


TORCHRUN = (shutil.which("torchrun") or f"{sys.executable} -m torch.distributed.run").split()


@pytest.mark.slow
@pytest.mark.parametrize("launch, processes, resume_hint, to_group", [
    ([*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "cvaekit"], 1,
     "torchrun --nproc_per_node 2 -m cvaekit run --resume", True),
    # cvaekit passes the signal on; a terminal's, which also reaches both processes, counts once, as under torchrun
    ([sys.executable, "-m", "cvaekit"], 2, "Continue with: cvaekit run --resume", False),
], ids=["torchrun", "train.processes, the signal to cvaekit alone"])
def test_ctrl_c_in_two_processes_saves_mid_epoch_and_a_resume_ends_bit_identical(tmp_path, tiny_fashion, launch,
                                                                                  processes, resume_hint, to_group):
    """The terminal's SIGINT reaches the launcher and both processes (or, sent to cvaekit alone,
    cvaekit passes it on): they agree on a step, process 0 saves the place in the epoch, and
    the resume the message gives ends as an uninterrupted run."""
    import os
    import signal
    import time
    from pathlib import Path

    # 8 steps an epoch a process: under torchrun 64 images each, with train.processes 64 of 128
    tiny_fashion["train"].update(epochs=2, limit=1024, processes=processes, batch_size=64 * processes)
    slow = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "slow_site"),
                                                         os.environ.get("PYTHONPATH", "")])}

    def run_in(folder, env=None):
        folder.mkdir()
        recipe = folder / "r.yaml"
        recipe.write_text(yaml.safe_dump({**tiny_fashion, "runs_dir": str(folder / "runs")}))
        return subprocess.Popen([*launch, "run", str(recipe), "-q"], cwd=folder, start_new_session=True, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    straight = run_in(tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stdout.read()[-3000:]
    steps = tmp_path / "steps.txt"
    interrupted = run_in(tmp_path / "interrupted", env={**slow, "CVAEKIT_TEST_STEPS": str(steps)})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # Ctrl-C after the 2nd of epoch 2's 8 steps (100 ms each)
        if steps.is_file() and steps.read_text().split().count("0") >= 10:
            break
        time.sleep(0.02)
    if to_group:  # what the terminal does: the launcher and both processes
        os.killpg(interrupted.pid, signal.SIGINT)
    else:
        os.kill(interrupted.pid, signal.SIGINT)
    output = interrupted.communicate(timeout=120)[0]
    assert interrupted.returncode != 0
    assert resume_hint in output, output[-3000:]
    run = next((tmp_path / "interrupted" / "runs").iterdir())
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and 0 < state["position"]["batches"] < 8, state.get("position")

    resumed = subprocess.run([*launch, "run", "--resume", str(run), "-q"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(next((tmp_path / "straight" / "runs").iterdir()) / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_train_processes_starts_two_cpu_processes_that_split_each_batch(tmp_path, tiny_fashion):
    """`train.processes: 2` (cvaekit run alone, no torchrun): the step's batch is split between
    two processes, so a step sees batch_size images and there are as many steps as in one
    process; the recipe's prior fit runs after, in the same processes."""
    from cvaekit.training import train

    tiny_fashion["train"].update(epochs=2, processes=2, checkpoint_every=2)
    tiny_fashion["model"]["prior"] = "conditional"
    tiny_fashion["fit_prior"] = {"prior": "mixture", "epochs": 2}
    path = train(tiny_fashion, progress=False)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [path.name]
    records = RunDir(path).records()
    train_records = [r for r in records if r["kind"] == "train"]
    assert [r["epoch"] for r in train_records] == [1, 2] and train_records[1]["loss"] < train_records[0]["loss"]
    assert train_records[0]["step"] == 32  # each takes 32 of every 64: its 1,000 images in 32 steps, as one process's 2,000
    assert [r["prior"] for r in records if r["kind"] == "fit_prior"] == ["mixture"]
    assert (path / "checkpoints" / "epoch-0002.prior.pt").is_file()


def test_train_processes_must_divide_the_batch_and_stay_out_of_torchrun(tiny_fashion, monkeypatch):
    from cvaekit.errors import RecipeError
    from cvaekit.training import train

    tiny_fashion["train"].update(processes=3)
    with pytest.raises(RecipeError, match=r"'train.processes' \(3\) must divide 'train.batch_size' \(64\).*Valid here: 1, 2, 4, 8, 16, 32, 64"):
        train(tiny_fashion, progress=False)
    tiny_fashion["train"].update(processes=2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RecipeError, match="under torchrun.*set it to 1"):
        train(tiny_fashion, progress=False)


@pytest.mark.slow
def test_an_error_in_a_training_process_reaches_the_caller_as_itself(tmp_path, tiny_fashion):
    from cvaekit.training import TrainingDiverged, train

    tiny_fashion["train"].update(processes=2, lr=1e30)
    with pytest.raises(TrainingDiverged, match="training diverged"):
        train(tiny_fashion, progress=False)
    assert not list((tmp_path / "runs").iterdir())  # nothing was saved, so no run folder is left


def _reports_an_error_then_aborts_at_exit() -> None:
    """As gloo can: the process reports its error, then its teardown calls abort()."""
    import multiprocessing.util

    from cvaekit.errors import RecipeError

    multiprocessing.util.Finalize(None, os.abort, exitpriority=100)
    raise RecipeError("the error each process met")


def test_a_process_that_aborts_after_reporting_its_error_still_raises_that_error():
    """Under load, a process whose peer stopped can end with SIGABRT ('terminate called without an
    active exception') after it reported its error: the caller gets the error, not the exit code."""
    from cvaekit.errors import RecipeError
    from cvaekit.runtime.processes import run_in_processes

    with pytest.raises(RecipeError, match="the error each process met"):
        run_in_processes(_reports_an_error_then_aborts_at_exit, (), 2)


SCRIPT = """
import cvaekit

recipe = {{"name": "guard", "seed": 0, "runs_dir": {runs!r},
          "data": {{"name": "shapes_captions", "image_size": 16, "n_train": 64, "n_test": 16}},
          "model": {{"latent_dim": 4, "conditioner": {{"name": "learned_text", "dim": 8}},
                    "encoder": {{"name": "mlp", "hidden": 16}}, "decoder": {{"name": "mlp", "hidden": 16}}}},
          "train": {{"epochs": 1, "batch_size": 16, "processes": 2}},
          "eval": {{"metrics": ["nelbo"], "samples_per_condition": 1}}}}
{call}
"""


def test_a_script_without_a_main_guard_gets_a_clear_error_not_a_bootstrapping_traceback(tmp_path):
    """`cvaekit.train()` at a script's top level with train.processes 2: the processes import the
    script again; each ends quietly, and the script's call says what to do."""
    import os
    from pathlib import Path

    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT.format(runs=str(tmp_path / "runs"), call="print('run:', cvaekit.train(recipe, progress=False))"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"cvaekit.errors.CvaekitError: 'train.processes' (2) starts 2 processes, and each imports the main script "
        f"('{script}') again; there a call to cvaekit.train() at the top level runs again instead of training. Put the "
        f"call under `if __name__ == \"__main__\":` (docs/api.md), or set 'train.processes' to 1. Nothing was trained.")
    assert "bootstrapping phase" not in done.stderr and "RuntimeError" not in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing was trained, no folder left


@pytest.mark.slow
def test_a_process_killed_mid_epoch_under_torchrun_restarts_continues_by_itself_bit_identical(tmp_path, tiny_fashion):
    """torchrun --max-restarts 1: process 1 is SIGKILLed after its 13th step (epoch 2, batch 5 of
    8); torchrun restarts the group with the same command, which continues the named run from
    the last save (train.save_every_steps: 3, so step 12) and ends as an uninterrupted run."""
    import os
    from pathlib import Path

    tiny_fashion["train"].update(epochs=2, limit=1024)  # 8 steps an epoch, 64 images each in each process

    def torchrun(folder, *args, env=None, **train):
        folder.mkdir()
        recipe = folder / "r.yaml"
        recipe.write_text(yaml.safe_dump({**tiny_fashion, "runs_dir": str(folder / "runs"),
                                          "train": {**tiny_fashion["train"], **train}}))
        done = subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", *args, "-m", "cvaekit", "run",
                               str(recipe), "-q", "--run-name", "crashy"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return folder / "runs" / "crashy", done.stdout + done.stderr

    straight, _ = torchrun(tmp_path / "straight")
    faults = {**os.environ, "CVAEKIT_TEST_KILL": "1:13",
              "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "slow_site"), os.environ.get("PYTHONPATH", "")])}
    restarted, output = torchrun(tmp_path / "killed", "--max-restarts", "1", env=faults, save_every_steps=3)
    assert "-9" in output or "SIGKILL" in output, output[-4000:]  # torchrun saw the kill and restarted the group
    assert f"Continuing run '{restarted}' from its last checkpoint (step 12 (batch 4 of epoch 2))" in output
    a, b = (load_checkpoint(run / "checkpoints" / "last.pt")["model"] for run in (straight, restarted))
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [[r["loss"] for r in RunDir(run).records() if r["kind"] == "train"] for run in (straight, restarted)]
    assert losses[0] == losses[1] and len(losses[0]) == 2
