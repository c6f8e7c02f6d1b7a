"""The caption judge: trained on a set's own pairs, real pictures pick out their own caption far
more often than chance, shuffled captions do not, and the judge is cached per data set."""

from __future__ import annotations

import pytest

from cvaekit.assembly import build_model
from cvaekit.components.metrics.caption_match import CaptionMatch
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
    assert 0 <= result["caption_match"] <= 1
    assert result["caption_match_share"] == pytest.approx(result["caption_match"] / result["caption_match_real"])


def test_the_judge_is_trained_once_per_data_set_and_text_encoder(shapes_context, cache_root):
    metric = CaptionMatch(n=16, candidates=3, judge_epochs=1)
    first = metric(shapes_context)
    cached = list((cache_root / "caption-judges").glob("*.pt"))
    assert cached
    again = metric(shapes_context)
    assert again == first
    assert list((cache_root / "caption-judges").glob("*.pt")) == cached
