"""learned_text: a vocabulary from the captions that travels in the state_dict, <unk> for
new words, and a trained caption run that generates from the command line's API."""

from __future__ import annotations

import warnings

import pytest
import torch
from test_injections import shapes_recipe

from cvaekit.components.conditioners.learned_text import UNK, LearnedText, UnknownWordsWarning
from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.errors import UnknownConditionError
from cvaekit.serving.generate import generate
from cvaekit.assembly import load_run
from cvaekit.training import train

TEXTS = ["a red circle above a blue square", "a small green triangle", "a red square"]


def test_vocabulary_persists_through_state_dict(tmp_path):
    trained = LearnedText(data=DataInfo((3, 16, 16), texts=TEXTS), dim=8)
    assert trained.vocab[:3] == ["<pad>", UNK, "a"] and "triangle" in trained.vocab
    path = tmp_path / "text.pt"
    torch.save(trained.state_dict(), path)
    loaded = LearnedText(data=DataInfo((3, 16, 16)), dim=8)  # no texts: as when a run is loaded
    assert loaded.vocab == ["<pad>", UNK]
    loaded.load_state_dict(torch.load(path, weights_only=True))
    assert loaded.vocab == trained.vocab
    assert torch.equal(loaded(TEXTS), trained(TEXTS))


def test_unknown_words_map_to_unk_and_order_matters():
    text = LearnedText(data=DataInfo((3, 16, 16), texts=TEXTS), dim=8)
    ids, lengths = text.encode(["A zebra, above!", ""])
    assert ids[0].tolist() == [text.index["a"], text.index[UNK], text.index["above"]]
    assert lengths.tolist() == [3, 1]
    with pytest.warns(UnknownWordsWarning, match="'zebra'"):
        assert text.parse(["a zebra"]) == ["a zebra"]
    a, b = text(["a red circle above a blue square", "a blue square above a red circle"])
    assert not torch.allclose(a, b)  # the GRU reads word order


@pytest.mark.parametrize("bad", ["", "  ", "?!", 3])
def test_a_text_with_no_word_is_refused_by_name(bad):
    text = LearnedText(data=DataInfo((3, 16, 16), texts=TEXTS), dim=8)
    with pytest.raises(UnknownConditionError, match=r"'learned_text' takes captions with at least one word, got "):
        text.parse(["a red circle", bad])


def test_tokens_come_with_a_mask():
    text = LearnedText(data=DataInfo((3, 16, 16), texts=TEXTS), dim=8, tokens=True, pool="mean")
    cond = text(["a red circle", "a red circle above a blue square"])
    assert isinstance(cond, Condition)
    assert cond.tokens.shape == (2, 7, 8) and cond.vector.shape == (2, 8)
    assert cond.mask.tolist()[0] == [True] * 3 + [False] * 4


def test_trained_caption_run_generates(tmp_path):
    run = train(shapes_recipe(tmp_path, [{"name": "mid", "at": 1}]), progress=False)
    assert (run / "samples" / "epoch-0001.png").is_file()
    loaded = load_run(run)
    assert "circle" in loaded.model.conditioner.vocab
    with pytest.warns(UnknownWordsWarning, match="'zebra'"):  # drawn, and the user told which word was not read
        out = generate(run, ["a red circle", "a small blue square above a large green triangle", "a zebra"],
                       n=3, out=tmp_path / "out.png")
    assert out.is_file() and out.stat().st_size > 1000


def test_words_outside_the_vocabulary_are_named_in_a_warning():
    text = LearnedText(data=DataInfo((3, 16, 16), texts=TEXTS), dim=8)
    with pytest.warns(UnknownWordsWarning, match=r"never read 'bag', 'leather' in its training captions.*"
                                                 r"knows 9 words: a, above, blue, circle"):
        assert text.parse(["a blue leather bag", "a red leather circle"]) == ["a blue leather bag",
                                                                               "a red leather circle"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text.parse(["A red circle, above a small blue square!"])  # every word known: silent


def test_the_contract_checker_probes_unknown_words_without_showing_their_warning():
    from cvaekit.testing import check_conditioner

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        check_conditioner("learned_text")
    assert not [w for w in shown if issubclass(w.category, UnknownWordsWarning)]
