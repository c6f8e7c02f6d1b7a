"""`train.rewinds`: a run whose loss diverges goes back two epoch ends, takes another batch
order and trains on; when it may not (no rewinds left, no epoch ended), it stops as before."""

import json
import os
import signal

import pytest
import torch

from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.store.runs import RunDir
from cvaekit.training import TrainingDiverged, TrainingInterrupted, TrainingLoop, train

STEPS = 10  # an epoch of the recipe below: 640 images in batches of 64


@pytest.fixture
def recipe(tiny_fashion):
    tiny_fashion["train"].update(epochs=4, limit=640, checkpoint_every=100, rewinds=1)
    return tiny_fashion


def blow_up(monkeypatch, steps):
    """The loss of the given steps (counted from 1 in this run) multiplied by 1e7, as a blown-up
    step's is; later starts of the patched loop count on."""
    calls = []
    step = TrainingLoop._step

    def blown(self, *args, **kwargs):
        calls.append(1)
        terms = step(self, *args, **kwargs)
        return {**terms, "loss": terms["loss"] * 1e7} if len(calls) in steps else terms

    monkeypatch.setattr(TrainingLoop, "_step", blown)
    return calls


def records(run, kind):
    return [r for r in RunDir(run).records() if r["kind"] == kind]


def test_a_blown_up_step_goes_back_two_epoch_ends_and_trains_on_in_another_order(recipe, monkeypatch):
    plain = train({**recipe, "train": {**recipe["train"], "rewinds": 0}}, progress=False)
    calls = blow_up(monkeypatch, {3 * STEPS + 5})  # epoch 4
    run = train(recipe, progress=False)
    assert len(calls) == 3 * STEPS + 5 + 2 * STEPS  # 35 steps, then back to the end of epoch 2: epochs 3 and 4 again
    went_back = records(run, "rewind")
    assert [(r["epoch"], r["step"], r["rewinds"]) for r in went_back] == [(2, 2 * STEPS, 1)]
    assert f"epoch 4, step {3 * STEPS + 5}" in went_back[0]["reason"]
    losses = [(r["epoch"], r["loss"]) for r in records(run, "train")]
    straight = [(r["epoch"], r["loss"]) for r in records(plain, "train")]
    assert [e for e, _ in losses] == [1, 2, 3, 4]  # the epochs gone back over are logged once, as trained again
    assert losses[:2] == straight[:2] and losses[2] != straight[2]  # epoch 3 again, in another order
    saved = load_checkpoint(run / "checkpoints/last.pt")
    assert (saved["epoch"], saved["step"], saved["rewinds"]) == (4, 4 * STEPS, 1)
    assert not RunDir(run).rewind_point.exists() and not RunDir(run).epoch_end.exists()  # removed at the end


def test_a_run_that_diverges_again_after_its_last_rewind_stops_saying_so(recipe, monkeypatch, tmp_path):
    """A blow-up in epoch 2 has only the end of epoch 1 to go back to; it breaks again there."""
    blow_up(monkeypatch, set(range(STEPS + 3, 100)))
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 11,.*already gone back 1 time, all that "
                                               r"'train.rewinds' \(1\) allows"):
        train(recipe, progress=False)
    run = next((tmp_path / "runs").iterdir())
    saved = load_checkpoint(run / "checkpoints/last.pt")
    assert (saved["epoch"], saved["rewinds"]) == (1, 1)  # where it went back to, kept
    assert [r["epoch"] for r in records(run, "rewind")] == [1]


def test_a_divergence_before_any_epoch_ended_stops_naming_why_it_did_not_go_back(recipe, monkeypatch):
    monkeypatch.setattr(TrainingLoop, "_step", _nan_at(TrainingLoop._step, 3))
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 1, step 3.*No epoch had ended yet to go back "
                                               r"to \('train.rewinds'\)"):
        train(recipe, progress=False)


def _nan_at(step, at):
    calls = []

    def nan(self, *args, **kwargs):
        calls.append(1)
        terms = step(self, *args, **kwargs)
        return {**terms, "loss": terms["loss"] * float("nan")} if len(calls) == at else terms

    return nan


def test_a_run_stopped_after_a_rewind_resumes_bit_identical(recipe, monkeypatch, tmp_path):
    recipe["train"]["epochs"] = 5
    blow_up(monkeypatch, {3 * STEPS + 5})
    straight = train(recipe, progress=False)
    blow_up(monkeypatch, {3 * STEPS + 5})
    adam_step, adam_calls = torch.optim.Adam.step, []

    def ctrl_c_at_50(self, *args, **kwargs):  # 35 steps, then epoch 3 again (45), then into epoch 4
        adam_calls.append(1)
        out = adam_step(self, *args, **kwargs)
        if len(adam_calls) == 50:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", ctrl_c_at_50)
    with pytest.raises(TrainingInterrupted):
        train(recipe, progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", adam_step)
    stopped = next(p for p in (tmp_path / "runs").iterdir() if p != straight)
    assert load_checkpoint(stopped / "checkpoints/last.pt")["rewinds"] == 1
    resumed = train(None, resume=stopped, progress=False)
    a, b = (load_checkpoint(p / "checkpoints/last.pt") for p in (straight, resumed))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["loss"] for r in records(straight, "train")] == [r["loss"] for r in records(resumed, "train")]
    assert json.dumps(records(straight, "rewind")) == json.dumps(records(resumed, "rewind"))
