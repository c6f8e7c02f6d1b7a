"""clip_text on a tiny CLIP saved with save_pretrained and loaded by path: vector and token
outputs, frozen and outside the state_dict, cached, and clear errors for a missing model."""

from __future__ import annotations

import pytest
import torch

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.errors import CvaekitError, UnknownConditionError
from cvaekit.assembly import build_model
from cvaekit.recipe import ComponentSpec, ModelConfig

INFO = DataInfo((3, 8, 8))
TEXTS = ["a man riding a horse on a beach", "a cat", "two dogs playing with a red ball in the park"]



def reference(path: str, texts: list[str]):
    """What transformers itself gives: get_text_features and the tokens' hidden states."""
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
    batch = AutoTokenizer.from_pretrained(path, local_files_only=True)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(**batch)
        features = out if isinstance(out, torch.Tensor) else out.pooler_output
        hidden = model.text_model(**batch).last_hidden_state
    return features, hidden, batch["attention_mask"]


def test_vector_is_clip_text_features(tiny_clip_path, registry):
    cond = registry.build("conditioner", "clip_text", {"model": tiny_clip_path}, data=INFO)
    out = cond(cond.parse(TEXTS))
    features, _, _ = reference(tiny_clip_path, TEXTS)
    assert cond.dim == 16 and out.shape == (3, 16)
    torch.testing.assert_close(out, features, atol=1e-5, rtol=1e-4)


def test_tokens_have_a_mask_and_the_projected_width(tiny_clip_path, registry):
    cond = registry.build("conditioner", "clip_text", {"model": tiny_clip_path, "tokens": True}, data=INFO)
    out = cond(TEXTS)
    features, hidden, mask = reference(tiny_clip_path, TEXTS)
    assert isinstance(out, Condition) and cond.dim == 16
    assert out.tokens.shape == (3, mask.shape[1], 16) and out.vector.shape == (3, 16)
    assert torch.equal(out.mask, mask.bool())
    torch.testing.assert_close(out.vector, features, atol=1e-5, rtol=1e-4)
    from transformers import CLIPModel

    proj = CLIPModel.from_pretrained(tiny_clip_path, local_files_only=True).text_projection
    with torch.no_grad():
        torch.testing.assert_close(out.tokens[1, :mask[1].sum()], proj(hidden[1, :mask[1].sum()]),
                                   atol=1e-5, rtol=1e-4)
    assert out.tokens[1, mask[1].sum():].abs().sum() == 0  # padding is zero and masked out


def test_unprojected_tokens_have_the_hidden_width(tiny_clip_path, registry):
    cond = registry.build("conditioner", "clip_text",
                          {"model": tiny_clip_path, "tokens": True, "project": False}, data=INFO)
    out = cond(TEXTS[:2])
    assert cond.dim == 32 and out.vector.shape == (2, 32) and out.tokens.shape[-1] == 32


def test_frozen_and_not_in_the_checkpoint(tiny_clip_path, registry):
    config = ModelConfig(conditioner=ComponentSpec("clip_text", {"model": tiny_clip_path}),
                         encoder=ComponentSpec("mlp", {"hidden": 8}),
                         decoder=ComponentSpec("mlp", {"hidden": 8}), latent_dim=2)
    model = build_model(config, INFO, registry)
    assert not any(k.startswith("conditioner") for k in model.state_dict())
    assert list(model.conditioner.parameters()) == []
    from cvaekit.caches.pretrained import load_clip

    clip, _ = load_clip(tiny_clip_path)
    assert not any(p.requires_grad for p in clip.parameters())
    x = torch.rand(3, 3, 8, 8)
    model.loss(x, TEXTS)["loss"].backward()  # trains the CVAE, never CLIP
    assert all(p.grad is None for p in clip.parameters())


def test_each_caption_is_encoded_once_and_kept_on_disk(tiny_clip_path, registry, tmp_path, monkeypatch):
    from cvaekit.caches.text import EmbeddingCache

    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    cond = registry.build("conditioner", "clip_text", {"model": tiny_clip_path}, data=INFO)
    first = cond(TEXTS)
    cond(TEXTS[::-1] + TEXTS)
    assert cond.cache.encoded == 3
    cond.cache.flush()
    fresh = EmbeddingCache(cond.cache.key, encode=lambda texts, device: pytest.fail("encoded again"))
    torch.testing.assert_close(torch.stack([r[0] for r in fresh.get(TEXTS)]), first)


def test_captions_must_be_text(tiny_clip_path, registry):
    cond = registry.build("conditioner", "clip_text", {"model": tiny_clip_path}, data=INFO)
    with pytest.raises(UnknownConditionError, match="takes captions"):
        cond.parse([3])


def test_a_missing_local_model_is_a_clear_error(registry, tmp_path):
    with pytest.raises(CvaekitError, match=r"CLIP model folder '.*no-clip' does not exist"):
        registry.build("conditioner", "clip_text", {"model": str(tmp_path / "no-clip")}, data=INFO)


def test_a_hub_model_not_cached_offline_is_a_clear_error(registry):
    with pytest.raises(CvaekitError, match=r"'nobody/no-such-clip' is not in the local Hugging Face "
                                           r"cache.*hf download.*a local path works the same"):
        registry.build("conditioner", "clip_text", {"model": "nobody/no-such-clip"}, data=INFO)


def test_a_folder_without_a_model_is_a_clear_error(registry, tmp_path):
    with pytest.raises(CvaekitError, match="cannot be loaded.*save_pretrained"):
        registry.build("conditioner", "clip_text", {"model": str(tmp_path)}, data=INFO)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_outputs_follow_the_model_device(tiny_clip_path, registry):
    cond = registry.build("conditioner", "clip_text", {"model": tiny_clip_path, "tokens": True},
                          data=INFO).to("cuda")
    out = cond(TEXTS)
    assert out.vector.is_cuda and out.tokens.is_cuda and out.mask.is_cuda


def test_loading_the_frozen_encoder_shows_no_loading_bar(tiny_clip_path, capfd, monkeypatch):
    from transformers.utils import logging as hf_logging

    from cvaekit.caches import pretrained

    pretrained._load_clip.cache_clear()
    monkeypatch.setattr(hf_logging, "_tqdm_active", True)  # as in a terminal: bars on
    pretrained.load_clip(tiny_clip_path)
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # on again for everything else
