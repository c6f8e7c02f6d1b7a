"""Classifier-free guidance: training drops the caption for the chosen share of a batch, the guided
output is the line through the decoder's outputs with and without the text, and a run that
never learned to draw without text refuses a guidance scale, naming the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cvaekit.assembly import build_model
from cvaekit.cli import app
from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.core.guidance import check_guidance
from cvaekit.core.objectives import OBJECTIVES, Objective
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.serving.service import generate_picture, load_runs
from cvaekit.training import train

INFO = DataInfo((1, 28, 28), ["a", "b", "c"])


def model(decoder="mlp", encoder="mlp"):
    recipe = load_recipe({"name": "t", "data": "fashion_mnist",
                          "model": {"latent_dim": 4, "conditioner": "onehot", "encoder": encoder, "decoder": decoder}})
    net = build_model(recipe.model, INFO, get_registry())
    torch.manual_seed(3)
    for p in net.parameters():  # weights that read the caption (some layers start at zero)
        torch.nn.init.normal_(p, std=0.3)
    return net


def test_dropped_rows_become_the_empty_condition_and_the_rest_stay():
    cond = Condition(torch.ones(3, 4), torch.ones(3, 2, 4), torch.tensor([[True, True], [True, False], [True, True]]))
    out = cond.dropped(torch.tensor([False, True, True]))
    assert torch.equal(out.vector[0], cond.vector[0]) and torch.equal(out.tokens[0], cond.tokens[0])
    assert out.vector[1:].abs().sum() == 0 and out.tokens[1:].abs().sum() == 0
    assert out.mask.tolist() == [[True, True], [True, False], [True, False]]  # one (zero) token left to attend to
    assert cond.empty().vector.abs().sum() == 0


def test_training_drops_the_caption_for_its_share_of_the_batch_and_evaluation_never_does():
    net = model().train()
    x, labels = torch.rand(8, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    objective = Objective(cond_dropout=0.5)
    torch.manual_seed(0)
    guided = net(x, labels, objective)
    torch.manual_seed(0)
    drop = torch.rand(8) < 0.5
    assert 0 < drop.sum() < 8
    by_hand = OBJECTIVES["elbo"](net, x, net.condition(labels).dropped(drop), objective)
    assert guided["loss"].item() == pytest.approx(by_hand["loss"].item(), rel=1e-6)
    torch.manual_seed(0)
    plain = OBJECTIVES["elbo"](net, x, net.condition(labels), objective)
    assert guided["loss"].item() != pytest.approx(plain["loss"].item(), rel=1e-6)
    net.eval()
    torch.manual_seed(0)
    evaluated = net(x, labels, objective)
    torch.manual_seed(0)
    assert evaluated["loss"].item() == pytest.approx(OBJECTIVES["elbo"](net, x, net.condition(labels), objective)["loss"].item())


@pytest.mark.parametrize("networks", [("mlp", "mlp"), ({"name": "ladder", "width": 8, "groups": 1}, {"name": "ladder", "width": 8})],
                         ids=["single", "hierarchy"])
def test_the_guided_image_lies_on_the_line_through_the_outputs_with_and_without_the_text(networks):
    net = model(*networks).eval()
    labels = torch.tensor([0, 1, 2])
    likelihood_mean = net.likelihood.mean
    outputs = {}
    net.likelihood.mean = lambda out: out  # the decoder's output itself, to see the line

    def at(scale):
        return net.sample(labels, generator=torch.Generator().manual_seed(5), guidance=scale)

    try:
        outputs = {s: at(s) for s in (0.0, 1.0, 2.0, 3.0)}
    finally:
        net.likelihood.mean = likelihood_mean
    assert torch.equal(outputs[1.0], net.prior_sample(net.condition(labels), net.draws(
        generator=torch.Generator().manual_seed(5))).out)  # scale 1 is the model as trained
    step = outputs[1.0] - outputs[0.0]
    assert step.abs().max() > 1e-3  # the caption changes the decoder's output at the same z
    assert torch.allclose(outputs[2.0], outputs[0.0] + 2 * step, atol=1e-4)
    assert torch.allclose(outputs[3.0], outputs[0.0] + 3 * step, atol=1e-4)
    images = net.sample(labels, generator=torch.Generator().manual_seed(5), guidance=3.0)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


@pytest.mark.parametrize("bad", [-1, float("inf"), "much", True])
def test_a_guidance_scale_must_be_a_finite_number_0_or_more(bad):
    with pytest.raises(CvaekitError, match="guidance scale must be a finite number, 0 or more"):
        check_guidance(bad)


def test_a_recipe_asking_guided_metrics_without_cond_dropout_names_the_fix():
    spec = {"name": "t", "data": "shapes_captions",
            "model": {"conditioner": {"name": "learned_text", "dim": 8}, "encoder": "mlp", "decoder": "mlp"},
            "eval": {"metrics": ["nelbo", {"name": "shapes_fidelity", "guidance": 2}]}}
    with pytest.raises(RecipeError, match=r"'eval.metrics.1' \(shapes_fidelity\) samples with guidance 2.*cond_dropout"):
        load_recipe(spec)
    assert load_recipe({**spec, "train": {"cond_dropout": 0.1}}).train.cond_dropout == 0.1
    with pytest.raises(RecipeError, match="cond_dropout"):
        load_recipe({**spec, "train": {"cond_dropout": 1.0}})


def test_generate_with_guidance_from_a_run_trained_with_and_without_cond_dropout(tmp_path, tiny_fashion):
    tiny_fashion["train"].update(epochs=1, limit=256)
    plain = train(tiny_fashion, progress=False)
    refused = CliRunner().invoke(app, ["generate", str(plain), "bag", "--guidance", "2", "-o", str(tmp_path / "a.png")])
    assert refused.exit_code != 0 and "train.cond_dropout" in refused.output and not (tmp_path / "a.png").exists()
    tiny_fashion["train"]["cond_dropout"] = 0.2
    guided = train(tiny_fashion, progress=False)
    done = CliRunner().invoke(app, ["generate", str(guided), "bag", "sneaker", "-g", "2.5", "-n", "3",
                                    "-o", str(tmp_path / "b.png")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "b.png").stat().st_size > 0
    (served,) = load_runs([str(guided)])
    page = generate_picture(served, "bag", n=3, seed=4, guidance=2.5)
    assert page.image.shape == (32, 3 * 30 + 2, 3)
    assert not np.array_equal(page.image, generate_picture(served, "bag", n=3, seed=4).image)


def test_evaluate_measures_guided_samples_in_their_own_columns_and_refuses_them_for_an_unguided_run(tmp_path, tiny_fashion):
    tiny_fashion["train"].update(epochs=1, limit=256)
    tiny_fashion["eval"]["limit"] = 100
    plain = train(tiny_fashion, progress=False)
    asked = "[{name: cond_accuracy, per_class: 10, judge_epochs: 1, guidance: 2}]"
    refused = CliRunner().invoke(app, ["evaluate", str(plain), "--metrics", asked])
    assert refused.exit_code != 0 and "'--metrics.0' (cond_accuracy) samples with guidance 2" in refused.output
    tiny_fashion["train"]["cond_dropout"] = 0.2
    guided = train(tiny_fashion, progress=False)
    done = CliRunner().invoke(app, ["evaluate", str(guided), "--checkpoints", "last", "--metrics",
                                    asked.replace("]", ", {name: cond_accuracy, per_class: 10, judge_epochs: 1}]")])
    assert done.exit_code == 0, done.output
    assert "cond_accuracy_g2" in (guided / "evaluation.csv").read_text()


def test_a_run_trained_with_cond_dropout_resumes_bit_identical_and_differs_from_one_without(tmp_path, tiny_fashion, monkeypatch):
    from test_training import losses, stop_in_epoch

    from cvaekit.store.checkpoint import load_checkpoint
    from cvaekit.training import TrainingInterrupted, TrainingLoop

    tiny_fashion["train"].update(epochs=3, limit=512)
    without = train(tiny_fashion, progress=False)
    tiny_fashion["train"]["cond_dropout"] = 0.3
    straight = train(tiny_fashion, progress=False)
    assert losses(straight) != losses(without)
    original = stop_in_epoch(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        train(tiny_fashion, progress=False)
    interrupted = next(p for p in (tmp_path / "runs").iterdir() if p not in (straight, without))
    monkeypatch.setattr(TrainingLoop, "_epoch", original)
    resumed = train(None, resume=interrupted, progress=False)
    assert losses(resumed) == losses(straight)
    a = load_checkpoint(straight / "checkpoints/last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
