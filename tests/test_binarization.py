"""Dynamic binarization (`data.binarize: dynamic`): the test split is the static one, the model
trains on binary pixels drawn anew at every step, and a resumed run draws the same pixels."""

from __future__ import annotations

import json

import pytest
import torch
from test_training_faults import same_weights, straight_and_resumed

from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.core.data import Split
from cvaekit.errors import RecipeError
from cvaekit.recipe import load_recipe
from cvaekit.training import train
from cvaekit.training.batches import step_generator
from cvaekit.training.loop import TrainingLoop


def losses(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["kind"] == "train"]


def test_dynamic_keeps_the_static_test_split_and_grey_training_images():
    static, dynamic = fashion_mnist(binarize="static"), fashion_mnist(binarize="dynamic")
    assert torch.equal(static.test.images, dynamic.test.images)
    assert set(static.test.images.unique().tolist()) == {0, 255}
    assert len(dynamic.train.images[:100].unique()) > 2  # grey, drawn at each use
    assert dynamic.train.binarize and not dynamic.test.binarize
    assert torch.equal(fashion_mnist(binarize=True).train.images, static.train.images)


def test_drawn_pixels_are_binary_with_the_grey_value_as_their_mean():
    split = Split(torch.full((4000, 1, 2, 2), 77, dtype=torch.uint8), torch.zeros(4000, dtype=torch.long),
                  binarize=True)
    images, _ = split.batch(torch.arange(4000), generator=torch.Generator().manual_seed(0))
    assert set(images.unique().tolist()) == {0.0, 1.0}
    assert images.mean().item() == pytest.approx(77 / 255, abs=0.01)  # 16,000 draws: se 0.004
    assert split.head(10).binarize and split.part(0, 2).binarize
    plain = Split(split.images, split.conditions)
    assert plain.drawn(images * 0.5).eq(images * 0.5).all()


def test_each_step_and_process_has_its_own_repeatable_draws():
    draw = lambda seed, step, rank: torch.rand(8, generator=step_generator(torch.device("cpu"), seed, step, rank))  # noqa: E731
    assert torch.equal(draw(0, 5, 0), draw(0, 5, 0))
    assert len({tuple(draw(*key).tolist()) for key in [(0, 5, 0), (0, 6, 0), (0, 5, 1), (1, 5, 0)]}) == 4


def test_training_sees_fresh_binary_draws_of_the_same_images(tiny_fashion, monkeypatch):
    tiny_fashion["data"]["binarize"] = "dynamic"
    tiny_fashion["train"].update(limit=64, batch_size=64, epochs=2)
    seen, step = [], TrainingLoop._step

    def keep(self, images, raw, total_steps):
        seen.append(images.clone())
        return step(self, images, raw, total_steps)

    monkeypatch.setattr(TrainingLoop, "_step", keep)
    train(tiny_fashion, progress=False)
    first, second = seen  # one batch an epoch, the same 64 images in another order
    assert set(torch.cat(seen).unique().tolist()) == {0.0, 1.0}
    ones = lambda x: x.flatten(1).sum(1).sort().values  # noqa: E731 - per image, whatever the order
    assert not torch.equal(ones(first), ones(second))
    grey = fashion_mnist().train.images[:64].float().div(255).mean().item()
    assert first.mean().item() == pytest.approx(grey, abs=0.01)


def test_a_dynamically_binarized_run_resumes_bit_identical(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["data"]["binarize"] = "dynamic"
    tiny_fashion["train"].update(limit=1024)
    straight, resumed = straight_and_resumed(tmp_path, tiny_fashion, monkeypatch, 21)
    assert losses(resumed) == losses(straight)
    assert same_weights(straight, resumed)


def test_an_unknown_binarization_names_the_choices(tmp_path, tiny_fashion):
    tiny_fashion["data"]["binarize"] = "sometimes"
    with pytest.raises(RecipeError, match=r"data.binarize.*(static|dynamic).*'sometimes'"):
        load_recipe(tiny_fashion)
