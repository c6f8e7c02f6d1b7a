"""The prior p(z | c): N(0, I) as in the study, or a `prior` component such as `conditional`."""

import pytest
import torch
from torch import nn

from cvaekit.components.priors.conditional import ConditionalPrior
from cvaekit.condition import Condition
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.prior import kl_divergence, sample_latent
from cvaekit.recipe import load_recipe
from cvaekit.registry import Registry
from cvaekit.runs import RunDir, load_run
from cvaekit.testing import ContractError, check_component
from cvaekit.training import train


def normal_kl(mu, logvar, prior_mu, prior_logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(prior_mu, torch.exp(0.5 * prior_logvar))
    return torch.distributions.kl_divergence(q, p).sum()


def test_kl_matches_torch_distributions_for_both_priors():
    torch.manual_seed(0)
    mu, logvar, pmu, plogvar = torch.randn(4, 3, 5).unbind(0)
    zeros = torch.zeros_like(mu)
    assert torch.allclose(kl_divergence((mu, logvar), None), normal_kl(mu, logvar, zeros, zeros), rtol=1e-5)
    assert torch.allclose(kl_divergence((mu, logvar), (pmu, plogvar)), normal_kl(mu, logvar, pmu, plogvar), rtol=1e-5)


def test_conditional_prior_starts_as_the_standard_normal_and_samples_follow_it():
    prior = ConditionalPrior(cond_dim=10, latent_dim=4)
    cond = Condition.of(torch.eye(10)[[1, 7]])
    mu, logvar = prior(cond)
    assert mu.shape == logvar.shape == (2, 4) and not mu.any() and not logvar.any()
    no_prior = sample_latent(None, cond, 4, torch.Generator().manual_seed(0))
    assert torch.equal(sample_latent(prior, cond, 4, torch.Generator().manual_seed(0)), no_prior)
    with torch.no_grad():
        prior.net.bias[:4] = 100.0  # move every mean far away: the samples follow
    assert sample_latent(prior, cond, 4, torch.Generator().manual_seed(0)).min() > 90


def test_temperature_scales_the_spread_about_the_prior_mean_and_must_not_be_negative():
    prior = ConditionalPrior(cond_dim=10, latent_dim=4)
    with torch.no_grad():
        prior.net.bias[:4] = 3.0  # every mean at 3, unit spread
    cond = Condition.of(torch.eye(10)[[1, 7]])
    full = sample_latent(prior, cond, 4, torch.Generator().manual_seed(0))
    half = sample_latent(prior, cond, 4, torch.Generator().manual_seed(0), temperature=0.5)
    assert torch.allclose(half - 3.0, 0.5 * (full - 3.0))
    assert torch.equal(sample_latent(prior, cond, 4, temperature=0.0), torch.full((2, 4), 3.0))
    assert not sample_latent(None, cond, 4, temperature=0.0).any()  # N(0, I): the mean is 0
    with pytest.raises(CvaekitError, match=r"temperature must be 0 or more.*-0.5"):
        sample_latent(prior, cond, 4, temperature=-0.5)


def test_recipe_prior_is_a_component_or_null(tiny_fashion):
    assert load_recipe(tiny_fashion).model.prior is None
    assert load_recipe(tiny_fashion, ["model.prior=conditional"]).model.prior.name == "conditional"
    with pytest.raises(RecipeError, match=r"'model.prior.name': .*'conditonal'.*conditional"):
        load_recipe(tiny_fashion, ["model.prior=conditonal"])


def test_a_conditional_prior_learns_a_gaussian_per_class_and_samples_from_it(tiny_fashion):
    run = train(tiny_fashion, overrides=["model.prior=conditional", "train.epochs=3"], progress=False)
    losses = [r["loss"] for r in RunDir(run).records() if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    model = load_run(run).model
    mu, logvar = model.prior(model.condition(torch.arange(10)))
    assert (mu[1:] - mu[0]).abs().amax(dim=1).min() > 1e-3  # every class has its own mean
    images = model.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


class OneTensorPrior(nn.Module):
    """Broken on purpose: returns mu only."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(cond_dim, latent_dim)

    def forward(self, cond):
        return self.net(cond.vector)


def test_a_prior_that_returns_one_tensor_breaks_the_contract():
    with pytest.raises(ContractError, match="prior 'OneTensorPrior' breaks the contract point 'output shape'"):
        check_component("prior", OneTensorPrior, registry=Registry())
