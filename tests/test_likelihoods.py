"""Likelihoods: each normalises, samples follow the density, the decoder outputs what the
likelihood reads, and a model trains and reports bits per dimension with each."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cvaekit.assembly import build_model
from cvaekit.components.likelihoods.gaussian import Gaussian
from cvaekit.components.likelihoods.logistic_mixture import LogisticMixture
from cvaekit.core.data import DataInfo
from cvaekit.core.likelihood import Bernoulli
from cvaekit.errors import RecipeError
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.testing import ContractError, check_component

ALL_VALUES = torch.arange(256, dtype=torch.float32) / 255


def test_bernoulli_probabilities_of_0_and_1_sum_to_one():
    lik, logit = Bernoulli(), torch.randn(5, 1, 1, 1)
    total = lik.log_prob(torch.zeros(5, 1, 1, 1), logit).exp() + lik.log_prob(torch.ones(5, 1, 1, 1), logit).exp()
    assert torch.allclose(total, torch.ones(5))


@pytest.mark.parametrize("channels", [1, 2])
def test_logistic_mixture_sums_to_one_over_every_8_bit_value(channels):
    """For one pixel: 256 values (grey), 65,536 pairs (two coupled channels)."""
    torch.manual_seed(0)
    lik = LogisticMixture(image_shape=(channels, 1, 1), components=3)
    out = torch.randn(1, lik.out_channels(channels), 1, 1) * 2
    grids = torch.meshgrid(*[ALL_VALUES] * channels, indexing="ij")
    x = torch.stack([g.reshape(-1) for g in grids], 1).view(-1, channels, 1, 1)
    total = lik.log_prob(x, out.expand(len(x), -1, -1, -1)).double().exp().sum()
    assert total.item() == pytest.approx(1.0, abs=2e-3)


def test_logistic_mixture_samples_follow_its_density():
    torch.manual_seed(1)
    lik = LogisticMixture(image_shape=(1, 1, 1), components=2)
    out = torch.tensor([[0.0, 1.0, -0.5, 0.4, -1.5, -2.0]]).view(1, 6, 1, 1)  # logits, means, log scales
    draws = lik.sample(out.expand(20000, -1, -1, -1), torch.Generator().manual_seed(0)).flatten()
    values = (draws * 255).round().long()
    counts = torch.bincount(values, minlength=256).float() / len(values)
    probs = lik.log_prob(ALL_VALUES.view(-1, 1, 1, 1), out.expand(256, -1, -1, -1)).exp()
    coarse = lambda p: p.view(16, 16).sum(1)  # noqa: E731 - 16 bins of 16 values
    assert torch.allclose(coarse(counts), coarse(probs), atol=0.02)
    assert (draws * 255 - values).abs().max() < 1e-4  # on the 8-bit grid


def test_logistic_mixture_shows_the_top_components_colour_or_the_blend():
    """A red pixel (70%) or a blue one (30%): `mode` shows red with green and blue coupled to
    it, `mean` the brownish blend of both."""
    red, blue = torch.tensor([1.0, -1.0, -1.0]), torch.tensor([-1.0, -1.0, 1.0])
    logits = torch.log(torch.tensor([0.7, 0.3]))
    per_component = [torch.cat([m, torch.full((3,), -4.0), torch.zeros(3)]) for m in (red, blue)]
    out = torch.cat([logits, *per_component]).view(1, -1, 1, 1)  # couplings 0: tanh(0)
    mode = LogisticMixture(image_shape=(3, 1, 1), components=2).mean(out).flatten()
    blend = LogisticMixture(image_shape=(3, 1, 1), components=2, show="mean").mean(out).flatten()
    assert torch.allclose(mode, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(blend, torch.tensor([0.7, 0.0, 0.3]), atol=1e-6)


@pytest.mark.parametrize("mean", [0.4, -0.3, 1.7, 0.999])
def test_gaussian_sums_to_one_over_every_8_bit_value_and_gives_each_its_bin(mean):
    lik = Gaussian(image_shape=(1, 1, 1), scale=0.05, learned=False)
    out = torch.full((256, 1, 1, 1), mean)
    probs = lik.log_prob(ALL_VALUES.view(-1, 1, 1, 1), out).double().exp()
    assert probs.sum().item() == pytest.approx(1, abs=1e-6)
    bin_102 = torch.special.ndtr(torch.tensor((103 / 256 - mean) / 0.05, dtype=torch.float64)) - \
        torch.special.ndtr(torch.tensor((102 / 256 - mean) / 0.05, dtype=torch.float64))
    assert probs[102].item() == pytest.approx(bin_102.item(), rel=1e-4, abs=1e-12)


def test_gaussian_samples_follow_its_probabilities():
    lik = Gaussian(image_shape=(1, 1, 1), scale=0.1, learned=False)
    out = torch.full((20000, 1, 1, 1), 0.3)
    values = (lik.sample(out, torch.Generator().manual_seed(0)) * 255).round().long().flatten()
    counts = torch.bincount(values, minlength=256).float() / len(values)
    probs = lik.log_prob(ALL_VALUES.view(-1, 1, 1, 1), out[:256]).exp()
    assert torch.allclose(counts.view(16, 16).sum(1), probs.view(16, 16).sum(1), atol=0.02)


def test_a_learned_gaussian_scale_is_a_parameter_and_a_fixed_one_is_not():
    assert any(True for _ in Gaussian(image_shape=(3, 4, 4)).parameters())
    assert not any(True for _ in Gaussian(image_shape=(3, 4, 4), learned=False).parameters())


@pytest.mark.parametrize("name, channels", [("bernoulli", 3), ("gaussian", 3), ("logistic_mixture", 100)])
def test_the_decoder_outputs_what_the_likelihood_reads(name, channels):
    recipe = load_recipe({"name": "t", "data": "fashion_mnist",
                          "model": {"conditioner": {"name": "onehot", "classes": ["a", "b"]}, "encoder": "conv",
                                    "decoder": {"name": "deconv", "channels": [8, 16]}, "latent_dim": 4,
                                    "likelihood": name}}, ["model.encoder.channels=[8, 16]"])
    model = build_model(recipe.model, DataInfo((3, 16, 16), ["a", "b"]), get_registry())
    x = torch.rand(2, 3, 16, 16)
    out = model.decoder(torch.zeros(2, 4), model.condition(torch.tensor([0, 1])))
    assert out.shape == (2, channels, 16, 16)
    terms = model(x, torch.tensor([0, 1]))
    assert torch.isfinite(terms["loss"]) and terms["loss"].requires_grad
    images = model.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 16, 16) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "logistic_mixture"])
def test_each_built_in_likelihood_keeps_the_contract(name):
    check_component("likelihood", name)


class OffByAConstant(nn.Module):
    """A Gaussian-looking log_prob that forgot its normalising constant."""

    bits = True

    def __init__(self, *, image_shape):
        super().__init__()

    def out_channels(self, channels):
        return channels

    def log_prob(self, x, out):
        return -((x - out) ** 2).flatten(1).sum(1)

    def sample(self, out, generator=None):
        return out.clamp(0, 1)

    def mean(self, out):
        return out.clamp(0, 1)


def test_the_contract_check_refuses_a_log_prob_that_does_not_normalise():
    with pytest.raises(ContractError, match="normalised.*sums to .*not 1"):
        check_component("likelihood", OffByAConstant)


def test_a_recipe_names_an_unknown_likelihood_and_hears_the_choices():
    with pytest.raises(RecipeError, match="model.likelihood.name.*bernoulli.*gaussian.*logistic_mixture"):
        load_recipe({"name": "t", "data": "fashion_mnist", "model": {"conditioner": "onehot", "encoder": "mlp",
                                                                     "decoder": "mlp", "likelihood": "poisson"}})
