"""The caption judge: trained on a set's own pairs, real pictures pick out their own caption far
more often than chance, shuffled captions do not, and the judge is cached per data set."""

from __future__ import annotations

import pytest

from cvaekit.assembly import build_model
import torch

from cvaekit.components.metrics.caption_match import CaptionMatch, augment, flips_allowed
from cvaekit.errors import CvaekitError
from cvaekit.evaluation.context import EvalContext
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe


@pytest.fixture
def shapes_context():
    registry = get_registry()
    data = registry.build("dataset", "shapes_captions", {"n_train": 256, "n_test": 64, "max_shapes": 1})
    recipe = load_recipe({"name": "t", "data": "fashion_mnist",
                          "model": {"conditioner": {"name": "learned_text", "dim": 32}, "encoder": "mlp",
                                    "decoder": "mlp", "latent_dim": 4}})
    model = build_model(recipe.model, data.info(), registry).eval()
    return EvalContext(model, data, data.test, seed=0)


def test_real_pictures_find_their_caption_far_above_chance_and_shuffled_ones_do_not(shapes_context):
    result = CaptionMatch(n=64, candidates=5, judge_epochs=30)(shapes_context)
    assert result["caption_match_real"] > 0.6
    assert result["caption_match_shuffled"] < 0.45  # chance is 1/5
    assert result["caption_match_real"] > result["caption_match_shuffled"] + 0.3
    assert 0 <= result["caption_match"] <= 1 and 0 <= result["caption_match_recon"] <= 1
    assert result["caption_match_share"] == pytest.approx(result["caption_match"] / result["caption_match_real"])


def test_the_samples_are_drawn_at_the_chosen_temperature(shapes_context):
    """At temperature 0 every picture of one caption is the prior's mode, so all are alike."""
    same_caption = ["a red circle"] * 4
    at_zero = CaptionMatch(temperature=0)._samples(shapes_context, same_caption)
    at_one = CaptionMatch()._samples(shapes_context, same_caption)
    assert torch.equal(at_zero[0], at_zero[3])
    assert not torch.equal(at_one[0], at_one[3])


def test_samples_at_another_temperature_or_guidance_get_their_own_columns(shapes_context):
    result = CaptionMatch(n=16, candidates=3, judge_epochs=1, temperature=0.5)(shapes_context)
    assert {"caption_match_t0.5", "caption_match_share_t0.5", "caption_match_real"} <= set(result)
    assert "caption_match" not in result and "caption_match_share" not in result
    both = CaptionMatch(n=16, candidates=3, judge_epochs=1, temperature=0.5, guidance=2)(shapes_context)
    assert {"caption_match_t0.5_g2", "caption_match_share_t0.5_g2"} <= set(both)


def test_a_negative_temperature_is_refused_with_what_it_must_be():
    with pytest.raises(CvaekitError, match="temperature must be 0 or more"):
        CaptionMatch(temperature=-0.5)


def test_the_judge_is_trained_once_per_data_set_and_text_encoder(shapes_context, cache_root):
    metric = CaptionMatch(n=16, candidates=3, judge_epochs=1)
    first = metric(shapes_context)
    cached = list((cache_root / "judges").glob("caption-*.pt"))
    assert cached
    again = metric(shapes_context)
    assert again == first
    assert list((cache_root / "judges").glob("caption-*.pt")) == cached


def test_flips_only_where_no_caption_says_left_or_right():
    assert flips_allowed(["a red circle above a blue square", "a sneaker below a bag"])
    assert not flips_allowed(["a red circle", "a red circle to the left of a blue square"])
    assert not flips_allowed(["a sneaker at the top right"])
    assert flips_allowed(["a bright red lamp"])  # 'bright' holds 'right', not the word


def test_augmented_pictures_move_a_little_and_are_never_turned_upside_down():
    image = torch.zeros(1, 1, 16, 16)
    image[0, 0, 3, 5] = 1.0
    batch = image.repeat(64, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    flipped = augment(batch, 0, True, gen)
    mirrored = [bool(torch.equal(f, image[0].flip(-1))) for f in flipped]
    assert all(m or torch.equal(f, image[0]) for f, m in zip(flipped, mirrored)) and 10 < sum(mirrored) < 54
    moved = augment(batch, 2, False, gen)
    rows, cols = zip(*[divmod(int(m.flatten().argmax()), 16) for m in moved])
    assert set(rows) <= {1, 2, 3, 4, 5} and set(cols) <= {3, 4, 5, 6, 7} and len(set(zip(rows, cols))) > 5
    assert moved.shape == batch.shape and torch.allclose(moved.sum((1, 2, 3)), torch.ones(64))
