"""Faults during training: a diverging loss, Ctrl-C part-way through an epoch, a full disk,
kill -9, a tampered checkpoint. Each loses nothing already saved."""

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from cvaekit.store import checkpoint
from cvaekit.training import loop as loop_module
from cvaekit.training import run as training
from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.errors import CvaekitError, DiskFullError
from cvaekit.store.runs import RunDir
from cvaekit.training import TrainingDiverged, TrainingInterrupted, TrainingLoop, train
from cvaekit.training.divergence import SKIP_STUCK
from cvaekit.training.state import SKIP_WARMUP


def losses(run):
    return [r["loss"] for r in RunDir(run).records() if r["kind"] == "train"]


def same_weights(a, b):
    a = load_checkpoint(a / "checkpoints/last.pt")["model"]
    b = load_checkpoint(b / "checkpoints/last.pt")["model"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def only_run(runs_dir, other=None):
    return next(p for p in runs_dir.iterdir() if p != other)


def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, tiny_fashion, monkeypatch):
    calls = 0
    step = TrainingLoop._step

    def nan_at_step_40(self, *args, **kwargs):  # 32 steps an epoch: step 40 is in epoch 2
        nonlocal calls
        calls += 1
        terms = step(self, *args, **kwargs)
        if calls == 40:
            terms = {**terms, "loss": terms["loss"] * float("nan")}
        return terms

    monkeypatch.setattr(TrainingLoop, "_step", nan_at_step_40)
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 2, step 40.*"
                                               r"last good checkpoint stays .*last.pt.*train.lr.*train.grad_clip"):
        train(tiny_fashion, progress=False)
    assert calls == 40  # stopped at that step, not at the end of the epoch
    run = only_run(tmp_path / "runs")
    assert load_checkpoint(run / "checkpoints/last.pt")["epoch"] == 1


def blow_up_at_step(monkeypatch, at, factor):
    """Multiply the loss of step `at` and every later one by `factor` (finite), as a diverged
    run's does; returns the list of calls made."""
    calls = []
    step = TrainingLoop._step

    def blown(self, *args, **kwargs):
        calls.append(1)
        terms = step(self, *args, **kwargs)
        return {**terms, "loss": terms["loss"] * factor} if len(calls) >= at else terms

    monkeypatch.setattr(TrainingLoop, "_step", blown)
    return calls


def test_a_finite_blown_up_loss_stops_at_its_step_naming_the_level_and_the_key(tmp_path, tiny_fashion, monkeypatch):
    calls = blow_up_at_step(monkeypatch, 40, 1e7)  # 32 steps an epoch: step 40 is in epoch 2
    with pytest.raises(TrainingDiverged, match=r"became \S+e\+\d+ at epoch 2, step 40, more than 1000 times the "
                                               r"lowest epoch mean \(\d+.*\) above it \('train.blowup_factor'\)"):
        train(tiny_fashion, progress=False)
    assert len(calls) == 40
    saved = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints/last.pt")
    assert saved["epoch"] == 1 and saved["lowest_loss"] > 0


def test_without_a_blowup_factor_a_finite_blow_up_trains_on(tiny_fashion, monkeypatch):
    calls = blow_up_at_step(monkeypatch, 40, 1e7)
    tiny_fashion["train"]["blowup_factor"] = None
    run = train(tiny_fashion, progress=False)
    assert len(calls) == 64 and load_checkpoint(run / "checkpoints/last.pt")["epoch"] == 2


def test_a_run_whose_every_step_is_skipped_stops_naming_the_steps_and_the_key(tmp_path, tiny_fashion):
    """A run stuck skipping (every gradient above skip_grad_factor times the running norm)
    no longer moves: it stops once SKIP_STUCK steps in a row were skipped, and keeps last.pt."""
    tiny_fashion["train"].update(epochs=2, limit=800, batch_size=8, skip_grad_factor=1e-9)  # 100 steps an epoch
    last_taken = SKIP_WARMUP  # the warm-up's steps are taken, every later one is too steep
    with pytest.raises(TrainingDiverged, match=rf"Every step from {last_taken + 1} to {last_taken + SKIP_STUCK} "
                                               r"\(epoch 2\) was skipped.*above 1e-09 times the running norm.*"
                                               rf"'train.skip_grad_factor'.*not moved since step {last_taken}.*"
                                               rf"last.pt' holds the weights of step {last_taken}.*"
                                               r"Lower 'train.lr' \(now 0.001\)"):
        train(tiny_fashion, progress=False)
    run = only_run(tmp_path / "runs")
    saved = load_checkpoint(run / "checkpoints/last.pt")
    assert saved["epoch"] == 1 and saved["skipped"] == [50, 50]
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["skipped_steps"] == 50


def test_gradients_that_are_never_finite_stop_the_run_after_the_same_count(tmp_path):
    """Not-finite gradient norms are skipped from the first step (no running norm yet): the
    stop still names the steps, and the message holds together without a level."""
    from types import SimpleNamespace

    from cvaekit.training.divergence import clip_or_skip
    from cvaekit.training.state import LoopState

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recipe = SimpleNamespace(train=SimpleNamespace(skip_grad_factor=10.0, grad_clip=None, lr=0.1))
    state = LoopState(torch.Generator())
    for _ in range(SKIP_STUCK - 1):
        model.weight.grad = torch.full_like(model.weight, float("nan"))
        clip_or_skip(model, optimizer, state, recipe, tmp_path / "last.pt")
        assert model.weight.grad is None  # dropped: the optimizer's step moves nothing
        state.step += 1
    model.weight.grad = torch.full_like(model.weight, float("nan"))
    with pytest.raises(TrainingDiverged, match=rf"Every step from 1 to {SKIP_STUCK} \(epoch 1\) was skipped.*"
                                               r"\(none taken yet; 'train.skip_grad_factor'\), or were not finite.*"
                                               r"Nothing had been saved yet"):
        clip_or_skip(model, optimizer, state, recipe, tmp_path / "last.pt")


def test_a_loss_below_the_factor_does_not_stop(tiny_fashion, monkeypatch):
    calls = blow_up_at_step(monkeypatch, 40, 50.0)  # far above, but not 1000 times
    train(tiny_fashion, progress=False)
    assert len(calls) == 64


def stop_in_epoch(monkeypatch, at):
    """A Ctrl-C as epoch `at` starts (outside the steps: it stops at once); returns the original
    `TrainingLoop._epoch` to put back."""
    original = TrainingLoop._epoch

    def stop(self, epoch, *args):
        if epoch == at:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(TrainingLoop, "_epoch", stop)
    return original


def interrupt_at_step(monkeypatch, at):
    """Send this process a real SIGINT right after optimiser step `at`, as Ctrl-C would; returns
    the original step to put back (monkeypatch.undo() would also undo the test's cache folder)."""
    step = torch.optim.Adam.step
    calls = 0

    def step_then_ctrl_c(self, *args, **kwargs):
        nonlocal calls
        out = step(self, *args, **kwargs)
        calls += 1
        if calls == at:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_ctrl_c)
    return step


def straight_and_resumed(tmp_path, recipe, monkeypatch, at):
    """The run trained straight through, and the same run stopped by a Ctrl-C after step `at`
    and resumed: the two a bit-identical resume must make equal."""
    straight = train(recipe, progress=False)
    step = interrupt_at_step(monkeypatch, at)
    with pytest.raises(TrainingInterrupted, match="cvaekit run --resume"):
        train(recipe, progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return straight, train(None, resume=only_run(tmp_path / "runs", straight), progress=False)


def test_ctrl_c_mid_epoch_saves_there_and_resume_ends_bit_identical(tmp_path, tiny_fashion, monkeypatch):
    straight = train(tiny_fashion, progress=False)
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job
    step = interrupt_at_step(monkeypatch, 25)  # 78% of the first epoch (32 steps)
    with pytest.raises(TrainingInterrupted, match=r"step 25 \(batch 25 of epoch 1\).*cvaekit run --resume"):
        train(tiny_fashion, progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    interrupted = only_run(tmp_path / "runs", straight)
    state = load_checkpoint(interrupted / "checkpoints/last.pt")
    assert (state["epoch"], state["step"], state["position"]["batches"]) == (0, 25, 25)
    assert signal.getsignal(signal.SIGINT) is handler  # the handler before training is restored

    resumed = train(None, resume=interrupted, progress=False)
    assert resumed == interrupted
    assert losses(resumed) == losses(straight)
    assert same_weights(straight, resumed)
    assert "position" not in load_checkpoint(resumed / "checkpoints/last.pt")


def test_save_every_steps_saves_last_pt_inside_the_epoch_and_changes_nothing_trained(tmp_path, tiny_fashion,
                                                                                   monkeypatch):
    """train.save_every_steps: last.pt also after steps 4 and 8 of a 10-step epoch, each with the
    place in the epoch (a crash loses at most 4 steps), and the same weights as without."""
    from cvaekit.training import loop

    tiny_fashion["train"].update(epochs=1, limit=640, checkpoint_every=1)
    plain = train(tiny_fashion, progress=False)
    saved, write = [], loop.write_training_checkpoint

    def recorded(path, **state):
        saved.append((state["step"], (state["position"] or {}).get("batches")))
        write(path, **state)

    monkeypatch.setattr(loop, "write_training_checkpoint", recorded)
    tiny_fashion["train"]["save_every_steps"] = 4
    periodic = train(tiny_fashion, progress=False)
    assert saved == [(4, 4), (8, 8), (10, None)]
    assert same_weights(plain, periodic)


def test_a_named_run_started_again_continues_where_it_stopped(tmp_path, tiny_fashion, monkeypatch, capsys):
    """--run-name: the run is runs/NAME; the same start again continues it from its last
    checkpoint by itself (what a torchrun restart does), and ends as an uninterrupted run."""
    straight = train(tiny_fashion, progress=False)
    step = interrupt_at_step(monkeypatch, 25)
    with pytest.raises(TrainingInterrupted):
        train(tiny_fashion, run_name="nightly", progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    named = tmp_path / "runs" / "nightly"
    assert load_checkpoint(named / "checkpoints/last.pt")["step"] == 25
    capsys.readouterr()
    assert train(tiny_fashion, run_name="nightly", progress=False) == named
    assert f"Continuing run '{named}' from its last checkpoint (step 25 (batch 25 of epoch 1))" in capsys.readouterr().err
    assert losses(named) == losses(straight) and same_weights(straight, named)
    train(tiny_fashion, run_name="nightly", progress=False)
    assert "has already trained all 2 epochs of its recipe; nothing to do" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(CvaekitError, match="not both"):
        train(tiny_fashion, run_name="nightly", resume=named, progress=False)
    with pytest.raises(CvaekitError, match=r"--run-name 'a/b' must be a folder name: letters, digits"):
        train(tiny_fashion, run_name="a/b", progress=False)
    tiny_fashion["model"]["latent_dim"] = 4
    with pytest.raises(CvaekitError, match=r"its model differs from the run's. Give another --run-name"):
        train(tiny_fashion, run_name="nightly", progress=False)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([straight.name, "nightly"])


def test_a_ctrl_c_that_a_c_extension_turns_into_another_error_still_stops_as_a_ctrl_c(tmp_path, tiny_fashion,
                                                                                     monkeypatch):
    def drawn_under_ctrl_c(*args, **kwargs):  # as matplotlib's renderer does with a KeyboardInterrupt
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise ValueError("Invalid affine transformation matrix") from None

    monkeypatch.setattr(loop_module, "loss_curve", drawn_under_ctrl_c)
    with pytest.raises(TrainingInterrupted, match="cvaekit run --resume"):
        train(tiny_fashion, progress=False)


def test_a_real_error_while_drawing_is_not_taken_for_a_ctrl_c(tmp_path, tiny_fashion, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Invalid affine transformation matrix")

    monkeypatch.setattr(loop_module, "loss_curve", broken)
    with pytest.raises(ValueError, match="Invalid affine"):
        train(tiny_fashion, progress=False)


def test_ctrl_c_before_anything_is_saved_leaves_no_folder_and_no_resume_command(tmp_path, tiny_fashion, monkeypatch):
    def stop(self, *args):
        raise KeyboardInterrupt  # outside the steps: stops at once, before any checkpoint

    monkeypatch.setattr(TrainingLoop, "_epoch", stop)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_fashion, progress=False)
    assert "--resume" not in str(info.value) and "before anything was saved" in str(info.value)
    assert not list((tmp_path / "runs").iterdir())


def test_a_full_disk_while_saving_leaves_the_previous_last_pt_intact(tmp_path, tiny_fashion, monkeypatch):
    save = torch.save
    calls = 0

    def full_disk_on_second_save(obj, f, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            with open(f, "wb") as half:
                half.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk_on_second_save)
    with pytest.raises(DiskFullError, match=r"No space left.*previous one is intact.*epoch 1\) is intact.*"
                                            r"cvaekit run --resume"):
        train(tiny_fashion, progress=False)
    run = only_run(tmp_path / "runs")
    assert load_checkpoint(run / "checkpoints/last.pt")["epoch"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001.pt", "last.pt"]  # no temp file
    monkeypatch.setattr(checkpoint.torch, "save", save)
    train(None, resume=run, progress=False)
    assert load_checkpoint(run / "checkpoints/last.pt")["epoch"] == 2


def test_a_checkpoint_carrying_a_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": argparse.Namespace(command="rm -rf ~")}, path)  # an arbitrary object
    with pytest.raises(CvaekitError, match="cannot be read"):
        load_checkpoint(path)


@pytest.mark.slow
def test_kill_9_then_resume_ends_bit_identical(tmp_path, tiny_fashion):
    tiny_fashion["train"]["epochs"] = 3
    straight = train(tiny_fashion, progress=False)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_fashion))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "cvaekit.cli", "run", str(path), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            runs = [p for p in (tmp_path / "runs").iterdir() if p != straight]
            if runs and (runs[0] / "checkpoints/last.pt").is_file():
                time.sleep(0.3)  # somewhere in epoch 2: mid-step, mid-save or mid-evaluation
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = only_run(tmp_path / "runs", straight)
    resumed = train(None, resume=killed, progress=False)
    assert losses(resumed) == losses(straight)
    assert same_weights(straight, resumed)


class ShortLabels(torch.nn.Module):
    """Declares dim 10 but gives 7 numbers per label: the engine must name it."""

    def __init__(self, *, data):
        super().__init__()
        self.dim = 10
        self.embed = torch.nn.Embedding(10, 7)

    def forward(self, labels):
        return self.embed(labels)


class RaisingLabels(ShortLabels):
    """Raises inside its forward at the first step."""

    def forward(self, labels):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x7 and 10x4)")


@pytest.mark.parametrize("factory, message", [
    (ShortLabels, r"The conditioner 'odd' \(from test-pkg 1.0\) gave a condition of shape \[64, 7\] "
                  r"for a batch of 64, but it declares dim 10"),
    (RaisingLabels, r"The conditioner 'odd' \(from test-pkg 1.0\) raised at the first training step: "
                    r"RuntimeError: mat1 and mat2"),
])
def test_a_misbehaving_plugin_is_named_at_the_first_step_and_leaves_no_folder(
        tmp_path, tiny_fashion, monkeypatch, factory, message):
    from typer.testing import CliRunner

    from cvaekit.cli import app
    from cvaekit.plugins import load_registry

    registry = load_registry()
    registry.add("conditioner", "odd", factory, origin="test-pkg 1.0")
    monkeypatch.setattr(training, "get_registry", lambda: registry)
    tiny_fashion["model"]["conditioner"] = "odd"
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_fashion))
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert __import__("re").search(message, text), text
    assert "Traceback" not in text
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    debug = CliRunner().invoke(app, ["--debug", "run", str(path), "-q"])
    assert debug.exit_code == 2 and "Traceback" in debug.output
