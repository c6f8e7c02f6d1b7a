"""Injections: each one trains on shapes_captions, works on maps and vectors, and a bad
placement or width is a clear error."""

from __future__ import annotations

import pytest
import torch

from cvaekit.core.condition import Condition
from cvaekit.errors import RecipeError
from cvaekit.assembly import build_model
from cvaekit.recipe import load_recipe

INJECTIONS = {
    "early_concat": [{"name": "early_concat", "at": 0, "proj_dim": 4}],
    "mid": [{"name": "mid", "at": 1}, {"name": "mid", "at": 1, "net": "decoder"}],
    "cross_attention": [{"name": "cross_attention", "at": 1, "heads": 2},
                        {"name": "cross_attention", "at": 1, "net": "decoder", "heads": 2}],
    "film": [{"name": "film", "at": 1}, {"name": "film", "at": 2}, {"name": "film", "at": 0, "net": "decoder"}],
}


def shapes_recipe(tmp_path, injections, **conditioner) -> dict:
    return {
        "name": "tiny_shapes", "seed": 0, "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "shapes_captions", "image_size": 16, "n_train": 64, "n_test": 16},
        "model": {"latent_dim": 4,
                  "conditioner": {"name": "learned_text", "dim": 16, **conditioner},
                  "encoder": {"name": "conv", "channels": [8, 16]},
                  "decoder": {"name": "deconv", "channels": [8, 16], "hidden": 32},
                  "injections": injections},
        "train": {"epochs": 1, "batch_size": 32, "checkpoint_every": 1},
        "eval": {"metrics": ["nelbo"], "samples_per_condition": 2},
    }


def build(registry, recipe: dict):
    recipe = load_recipe(recipe, registry=registry)
    data = registry.build("dataset", recipe.data.name, recipe.data.params)
    return build_model(recipe.model, data.info(), registry), data


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_each_injection_trains_with_falling_loss(registry, tmp_path, name):
    torch.manual_seed(0)
    model, data = build(registry, shapes_recipe(tmp_path, INJECTIONS[name], tokens=name == "cross_attention"))
    placed = sum(len(stack) for net in (model.encoder, model.decoder) for stack in net.injections)
    assert placed == len(INJECTIONS[name])
    images, captions = data.train.batch(torch.arange(32), caption="first")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = model.loss(images, captions)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert all(p.grad is not None for n, p in model.named_parameters() if "injections" in n)


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_each_injection_takes_vectors_and_maps(registry, name):
    params = {"heads": 2} if name == "cross_attention" else {}
    inj = registry.build("injection", name, params, cond_dim=6, channels=8)
    cond = Condition(torch.randn(3, 6), torch.randn(3, 5, 6), torch.tensor([[True] * 5, [True] * 2 + [False] * 3,
                                                                             [True] + [False] * 4]))
    assert inj(torch.randn(3, 8, 4, 4), cond).shape == (3, inj.out_channels, 4, 4)
    assert inj(torch.randn(3, 8), cond).shape == (3, inj.out_channels)
    expected = 8 + 6 if name in ("early_concat", "mid") else 8
    assert inj.out_channels == expected


@pytest.mark.parametrize("cond_dim", [6, 8], ids=["condition narrower than the features", "as wide"])
def test_attention_from_a_multihead_attention_modules_weights_gives_what_the_module_gives(cond_dim):
    """Cross-attention (and the priors' token read-outs) compute attention from their
    nn.MultiheadAttention's weights directly, a faster path: the result is the module's own,
    padding ignored, for both of its weight layouts."""
    from cvaekit.core.attention import attend

    module = torch.nn.MultiheadAttention(8, 2, kdim=cond_dim, vdim=cond_dim, batch_first=True).eval()
    tokens, mask = torch.randn(3, 5, cond_dim), torch.tensor([[True] * 5, [True] * 2 + [False] * 3, [True] + [False] * 4])
    query = torch.randn(3, 16, 8)
    expected, _ = module(query, tokens, tokens, key_padding_mask=~mask, need_weights=False)
    assert torch.allclose(attend(module, query, tokens, ~mask), expected, atol=1e-6)
    assert torch.allclose(attend(module, query, tokens), module(query, tokens, tokens, need_weights=False)[0], atol=1e-6)


def test_film_starts_as_identity(registry):
    film = registry.build("injection", "film", {}, cond_dim=6, channels=8)
    h = torch.randn(2, 8, 4, 4)
    assert torch.equal(film(h, Condition.of(torch.randn(2, 6))), h)


def test_stage_the_network_lacks_is_a_clear_error(registry, tmp_path):
    recipe = shapes_recipe(tmp_path, [{"name": "mid", "at": 7}])
    with pytest.raises(RecipeError, match=r"'mid' is placed at stage 7 of the encoder, but encoder "
                                          r"'conv' takes stages \[0, 1, 2\]"):
        build(registry, recipe)
    recipe = shapes_recipe(tmp_path, [{"name": "film", "at": 2, "net": "decoder"}])
    with pytest.raises(RecipeError, match=r"stage 2 of the decoder.*stages \[0, 1\]"):
        build(registry, recipe)


def test_heads_that_do_not_divide_the_width_are_a_clear_error(registry, tmp_path):
    recipe = shapes_recipe(tmp_path, [{"name": "cross_attention", "at": 1, "heads": 3}])
    with pytest.raises(RecipeError, match="'heads' to divide 8, got 3"):
        build(registry, recipe)


def test_attention_dropout_outside_zero_to_one_is_a_clear_error(registry, tmp_path):
    recipe = shapes_recipe(tmp_path, [{"name": "cross_attention", "at": 1, "dropout": 1.5}])
    with pytest.raises(RecipeError, match="'dropout' must be at least 0 and below 1, got 1.5"):
        build(registry, recipe)
