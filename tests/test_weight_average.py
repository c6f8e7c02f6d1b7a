"""`train.ema`: the weights' moving average follows its formula, resumes bit-identically from
a Ctrl-C mid-epoch, and is the model a run is used with (load_run, hence evaluate, generate,
serve, export, fit-prior), while resuming trains the trained weights."""

from __future__ import annotations

import pytest
import torch
from test_objectives_training import records
from test_training_faults import same_weights, straight_and_resumed

from cvaekit.assembly import load_run
from cvaekit.errors import RecipeError
from cvaekit.store.checkpoint import load_checkpoint, weights_in_use
from cvaekit.training import train
from cvaekit.training.averaging import average_state, warmed_decay, weight_average


def test_the_average_follows_its_warmed_up_formula_and_continues_from_its_saved_state():
    model = torch.nn.Linear(1, 1, bias=False)
    average = weight_average(model, 0.5)
    expected = None
    for n, value in enumerate((1.0, 2.0, 3.0, 4.0)):
        model.weight.data.fill_(value)
        average.update_parameters(model)
        d = min(0.5, (1 + n) / (10 + n))  # the update after n averaged steps
        expected = value if expected is None else d * expected + (1 - d) * value  # the first step is copied
    assert average.module.weight.item() == pytest.approx(expected)
    assert warmed_decay(0.999, 0) == 0.1 and warmed_decay(0.999, 90) == 0.91 and warmed_decay(0.999, 10**6) == 0.999
    again = weight_average(model, 0.5, average_state(average))
    model.weight.data.fill_(5.0)
    again.update_parameters(model)
    assert again.module.weight.item() == pytest.approx(5 / 14 * expected + 9 / 14 * 5.0)  # after 4: (1 + 4) / (10 + 4)
    assert weight_average(model, None) is None and average_state(None) == {}


def test_a_run_with_an_average_resumes_bit_identical_and_is_used_with_it(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["train"].update(ema=0.9, limit=1024)
    straight, resumed = straight_and_resumed(tmp_path, tiny_fashion, monkeypatch, 21)  # inside the second epoch of 16 steps
    assert [r["loss"] for r in records(resumed)] == [r["loss"] for r in records(straight)]
    assert same_weights(straight, resumed)
    a, b = (load_checkpoint(run / "checkpoints/last.pt") for run in (straight, resumed))
    assert a["ema_updates"] == b["ema_updates"] == a["step"]
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert any(not torch.equal(a["ema"][k], a["model"][k]) for k in a["model"])  # an average, not a copy
    used = load_run(straight).model.state_dict()
    assert all(torch.equal(used[k].cpu(), a["ema"][k]) for k in a["ema"])


def test_without_an_average_a_run_is_used_with_its_trained_weights(tiny_fashion):
    run = train(tiny_fashion, progress=False)
    saved = load_checkpoint(run / "checkpoints/last.pt")
    assert "ema" not in saved and weights_in_use(saved) is saved["model"]


@pytest.mark.parametrize("decay", [1.0, 0.0, 1.5])
def test_a_decay_outside_0_to_1_is_refused_naming_the_range(tiny_fashion, decay):
    tiny_fashion["train"]["ema"] = decay
    with pytest.raises(RecipeError, match=r"'train.ema' must be (above 0|below 1)"):
        train(tiny_fashion, progress=False)
