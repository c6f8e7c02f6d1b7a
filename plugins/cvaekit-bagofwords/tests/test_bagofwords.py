"""The example plugin's own tests: cvaekit's contract checks, then what is special here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.errors import UnknownConditionError
from cvaekit.plugins import load_registry
from cvaekit.recipe import load_recipe
from cvaekit.testing import check_component
from cvaekit_bagofwords import CharNGram, GatedAdd

RECIPE = Path(__file__).resolve().parents[1] / "src" / "cvaekit_bagofwords" / "recipes" / "shapes_bow.yaml"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_found_through_its_entry_point(registry):
    for kind, name in (("conditioner", "char_ngram"), ("injection", "gated_add")):
        assert registry.get(kind, name).origin.startswith("cvaekit-bagofwords ")


@pytest.mark.parametrize("params", [{}, {"dim": None, "buckets": 256}, {"ngrams": [3], "lowercase": False}])
def test_char_ngram_meets_the_conditioner_contract(registry, params):
    check_component("conditioner", "char_ngram", params, registry=registry)


@pytest.mark.parametrize("spatial", [(8, 8), None])  # conv nets and MLPs
def test_gated_add_meets_the_injection_contract(registry, spatial):
    check_component("injection", "gated_add", {"gate_init": 0.3}, registry=registry, spatial=spatial)


def test_similar_words_share_ngrams():
    cond = CharNGram(data=DataInfo((1, 28, 28)), dim=None)
    v = cond(["sneaker", "sneakers", "bag"])
    cos = v @ v.T  # rows are unit vectors
    assert cos[0, 1] > 0.8 > 0.2 > cos[0, 2]


def test_label_ids_read_as_class_names():
    cond = CharNGram(data=DataInfo((1, 28, 28), classes=["Sneaker", "Bag"]))
    assert torch.equal(cond(torch.tensor([1, 0])), cond(["Bag", "Sneaker"]))


def test_empty_text_is_a_clear_error():
    cond = CharNGram(data=DataInfo((1, 28, 28)))
    with pytest.raises(UnknownConditionError, match="non-empty text"):
        cond.parse(["a red circle", "  "])


def test_closed_gate_starts_as_identity():
    inj = GatedAdd(cond_dim=4, channels=3, gate_init=0.0)
    h = torch.randn(2, 3, 5, 5)
    c = torch.randn(2, 4)
    assert torch.equal(inj(h, Condition(c, c[:, None])), h)


def test_wrong_condition_size_names_both_shapes():
    inj = GatedAdd(cond_dim=4, channels=3)
    with pytest.raises(ValueError, match=r"condition \[B, 4\].*got h \(2, 3, 5, 5\) and condition \(2, 6\)"):
        c = torch.randn(2, 6)
        inj(torch.randn(2, 3, 5, 5), Condition(c, c[:, None]))


def test_recipe_validates(registry):
    recipe = load_recipe(RECIPE, registry=registry)
    assert recipe.model.conditioner.name == "char_ngram"
    assert [(s.name, s.net, s.at) for s in recipe.model.injections] == [
        ("gated_add", "encoder", 1), ("gated_add", "encoder", 2), ("gated_add", "decoder", 1)]
