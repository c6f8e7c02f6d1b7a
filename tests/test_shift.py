"""Shifted training pictures (`train.shift`): each picture moves by a few pixels, drawn anew at
every step, the test split untouched, and a resumed run draws the same moves."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from test_training_faults import losses, same_weights, straight_and_resumed

from cvaekit.core.data import Split, shifted
from cvaekit.errors import RecipeError
from cvaekit.recipe import load_recipe
from cvaekit.training import train
from cvaekit.training.loop import TrainingLoop


def dot_at(y: int, x: int, n: int = 1, side: int = 9) -> torch.Tensor:
    images = torch.zeros(n, 1, side, side)
    images[:, :, y, x] = 1.0
    return images


def test_a_shift_moves_each_picture_by_at_most_shift_pixels_and_reaches_every_offset():
    moved = shifted(dot_at(4, 4, n=2000), 2, torch.Generator().manual_seed(0))
    where = moved.flatten(1).argmax(1)
    rows, cols = where // 9, where % 9
    assert moved.flatten(1).sum(1).eq(1).all()  # the dot stays whole: a move, not a blur
    offsets = set(zip((rows - 4).tolist(), (cols - 4).tolist()))
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_a_shift_repeats_the_edge_into_what_it_uncovers():
    images = torch.arange(25.0).view(1, 1, 5, 5).repeat(200, 1, 1, 1)
    moved = shifted(images, 1, torch.Generator().manual_seed(1))
    padded = F.pad(images[:1], (1, 1, 1, 1), mode="replicate")[0, 0]
    crops = {tuple(padded[y:y + 5, x:x + 5].flatten().tolist()) for y in range(3) for x in range(3)}
    assert {tuple(m.flatten().tolist()) for m in moved} == crops


def test_no_shift_leaves_the_pictures_as_they_are_and_the_same_generator_repeats_a_draw():
    images = torch.rand(6, 3, 8, 8)
    assert shifted(images, 0) is images
    split = Split((images * 255).to(torch.uint8), torch.zeros(6, dtype=torch.long), shift=3)
    draw = lambda seed: split.drawn(images, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(4), draw(4)) and not torch.equal(draw(4), draw(5))
    assert split.drawn_per_step and split.head(3).shift == 3
    assert not Split(split.images, split.conditions).drawn_per_step


def test_training_sees_the_pictures_moved_anew_each_epoch(tiny_fashion, monkeypatch):
    tiny_fashion["train"].update(limit=64, batch_size=64, epochs=2, shift=2)
    seen, step = [], TrainingLoop._step

    def keep(self, images, raw, total_steps):
        seen.append(images.clone())
        return step(self, images, raw, total_steps)

    monkeypatch.setattr(TrainingLoop, "_step", keep)
    run = train(tiny_fashion, progress=False)
    first, second = seen  # one batch an epoch
    assert first.shape == second.shape == (64, 1, 28, 28)
    ink = lambda x: x.flatten(1).sum(1).sort().values  # noqa: E731 - per image, whatever the order
    assert not torch.equal(ink(first), ink(second))  # moved differently: edges repeated in or cut off
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "train"] == [1, 2]


def test_a_shifted_run_resumes_bit_identical(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["train"].update(limit=1024, shift=2)
    straight, resumed = straight_and_resumed(tmp_path, tiny_fashion, monkeypatch, 21)
    assert losses(resumed) == losses(straight)
    assert same_weights(straight, resumed)


def test_a_negative_shift_is_refused_with_its_bound(tiny_fashion):
    tiny_fashion["train"]["shift"] = -1
    with pytest.raises(RecipeError, match=r"train.shift.*-1"):
        load_recipe(tiny_fashion)
