"""shapes_captions: deterministic, fast, and its checker tells matching captions from others."""

from __future__ import annotations

import time

import pytest
import torch

from cvaekit.components.datasets.shapes import KINDS, RELATIONS, parse_caption, shapes_captions
from cvaekit.components.metrics.shapes_fidelity import check, failure, fidelity
from cvaekit.errors import RecipeError, UnknownConditionError


def test_same_seed_same_data_other_seed_other_data():
    a, b = shapes_captions(n_train=50, n_test=20, seed=3), shapes_captions(n_train=50, n_test=20, seed=3)
    c = shapes_captions(n_train=50, n_test=20, seed=4)
    assert torch.equal(a.train.images, b.train.images) and a.train.conditions == b.train.conditions
    assert not torch.equal(a.train.images, c.train.images)
    assert not torch.equal(a.train.images, a.test.images)


def test_images_and_captions_look_right():
    data = shapes_captions(image_size=32, n_train=200, n_test=10, max_shapes=3)
    assert data.train.images.shape == (200, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.classes is None and data.image_shape == (3, 32, 32)
    counts = {len(parse_caption(caps[0]).shapes) for caps in data.train.conditions}
    assert counts == {1, 2, 3}
    for caps in data.train.conditions:
        assert len(caps) >= 2  # several phrasings per image
        scenes = [parse_caption(c) for c in caps]
        assert all(set(s.shapes) == set(scenes[0].shapes) for s in scenes)
    assert {s.kind for caps in data.train.conditions for s in parse_caption(caps[0]).shapes.values()} == set(KINDS)


def test_thousands_of_images_in_seconds():
    start = time.perf_counter()
    shapes_captions(n_train=5000, n_test=100)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("size", [16, 32, 64])
def test_checker_accepts_real_images_for_every_phrasing(size):
    data = shapes_captions(image_size=size, n_train=1, n_test=300)
    for j in range(3):
        captions = [caps[min(j, len(caps) - 1)] for caps in data.test.conditions]
        assert fidelity(captions, data.test.images) == 1.0


def test_checker_scores_shuffled_captions_near_chance():
    data = shapes_captions(n_train=1, n_test=500)
    captions = [caps[0] for caps in data.test.conditions]
    assert fidelity(captions[1:] + captions[:1], data.test.images) < 0.05
    assert not check(captions[0], torch.zeros(3, 32, 32))  # an empty image shows nothing
    assert fidelity(captions, data.test.images.float() / 255) == 1.0  # float images too


def test_checker_tells_relation_colour_shape_and_size_apart():
    data = shapes_captions(n_train=1, n_test=400, max_shapes=2)
    swaps = {**{rel: (opposite, "relation") for rel, opposite in RELATIONS.items()},
             "small": ("large", "size"), "large": ("small", "size"),
             **{kind: (KINDS[(i + 1) % len(KINDS)], "kind") for i, kind in enumerate(KINDS)}}
    for caps, image in zip(data.test.conditions, data.test.images):
        caption = caps[0]
        assert failure(caption, image) is None
        assert failure(caption, torch.zeros_like(image)) == "missing"
        for old, (new, reason) in swaps.items():
            if f" {old}" in caption:
                swapped = caption.replace(f" {old}", f" {new}", 1)
                assert not check(swapped, image), (caption, old)
                assert failure(swapped, image) == reason, (caption, old)


def test_caption_grammar_errors_name_the_valid_words():
    scene = parse_caption("a small red circle above a large blue square and a green triangle to the left of a blue square")
    assert set(scene.shapes) == {"red", "blue", "green"}
    assert scene.relations == [("red", "above", "blue"), ("green", "to the left of", "blue")]
    assert scene.shapes["blue"].size == "large"
    with pytest.raises(UnknownConditionError, match="Colours: red, green"):
        parse_caption("a man riding a horse")
    with pytest.raises(RecipeError, match="max_shapes"):
        shapes_captions(max_shapes=5)
