"""fashion_captions: Fashion-MNIST items placed on a canvas with captions, and the
fashion_fidelity metric that reads them back with the Fashion-MNIST judge."""

import pytest
import torch

from cvaekit.components.datasets.fashion_captions import (CELL, OFFSET, Layout, fashion_captions,
                                                          parse_caption)
from cvaekit.components.metrics.fashion_fidelity import FashionFidelity, fashion_judge, fidelity, read
from cvaekit.errors import RecipeError, UnknownConditionError
from cvaekit.evaluation import EvalContext
from cvaekit.testing import check_component


@pytest.fixture(scope="module")
def data():
    return fashion_captions(n_train=300, n_test=200)


def test_captions_parse_into_the_items_and_their_place_or_relation():
    assert parse_caption("a sneaker at the top right") == Layout((7,), cell=(0, 1))
    assert parse_caption("An ankle boot to the left of a bag.") == Layout((9, 8), relation="to the left of")
    with pytest.raises(UnknownConditionError, match=r"'a hat at the top' is not a fashion_captions caption.*sneaker"):
        parse_caption("a hat at the top")


def test_each_canvas_holds_its_captions_items_in_their_cells(data):
    assert data.train.images.shape == (300, 1, 64, 64) and data.train.images.dtype == torch.uint8
    for image, captions in zip(data.test.images[:50], data.test.conditions[:50]):
        layouts = [parse_caption(c) for c in captions]
        assert len({tuple(sorted(lay.items)) for lay in layouts}) == 1  # every caption names the same items
        inked = [(r, c) for r in (0, 1) for c in (0, 1)
                 if image[:, r * CELL + OFFSET:(r + 1) * CELL - OFFSET, c * CELL + OFFSET:(c + 1) * CELL - OFFSET].any()]
        assert len(inked) == len(layouts[0].items)
        if layouts[0].cell is not None:
            assert inked == [layouts[0].cell]
    assert torch.equal(fashion_captions(n_train=300, n_test=200).test.images, data.test.images)  # seeded


def test_the_dataset_passes_its_contract_and_refuses_three_items():
    check_component("dataset", "fashion_captions", {"n_train": 64, "n_test": 16}, bad_params={"max_items": 3})
    with pytest.raises(RecipeError, match="'max_items' for fashion_captions must be 1 or 2, got 3"):
        fashion_captions(n_train=4, n_test=4, max_items=3)


@pytest.mark.slow
def test_the_judge_reads_real_canvases_as_their_captions_and_shuffled_ones_not(data):
    judge = fashion_judge()
    images, captions = data.test.batch(torch.arange(200), caption="first")
    assert fidelity(judge, captions, images) > 0.7
    assert fidelity(judge, captions[1:] + captions[:1], images) < 0.1
    assert read(judge, torch.zeros(1, 1, 64, 64)) == [{}]  # a blank canvas holds nothing


@pytest.mark.slow
def test_the_fashion_fidelity_metric_scores_a_model_that_draws_the_real_canvas_at_the_ceiling(data):
    class Copier(torch.nn.Module):
        """Draws the test canvas of each caption: the ceiling."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.lookup = {caps[0]: data.test.images[i] for i, caps in enumerate(data.test.conditions)}

        def sample(self, captions, generator=None, temperature=1.0):
            return torch.stack([self.lookup[c].float() / 255 for c in captions])

    out = FashionFidelity(n_captions=100)(EvalContext(Copier(), data, data.test))
    # a caption that several test canvases share is drawn as one of them: near the ceiling, not on it
    assert out["fidelity"] == pytest.approx(out["fidelity_real"], abs=0.05)
    assert out["fidelity_real"] > 0.7 and out["fidelity_shuffled"] < 0.1
