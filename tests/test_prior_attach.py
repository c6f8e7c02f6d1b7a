"""A prior that needs the model (a VampPrior: the encoder's posterior at learned pseudo-inputs)
reaches it through `attach(model)`, in training, when a run is loaded and in fit-prior."""

import math

import pytest
import torch
from torch import nn

from cvaekit.assembly import load_run
from cvaekit.core.model import ModelView
from cvaekit.core.prior import gaussian_log_prob, mixture_draw
from cvaekit.errors import ComponentError
from cvaekit.plugins import load_registry
from cvaekit.testing import ContractError, check_component
from cvaekit.training import train
from cvaekit.training.fit_prior import fit_prior


class TinyVamp(nn.Module):
    """p(z | c) = the mean over K learned pseudo-inputs u_k of q(z | u_k, c), the model's own
    encoder's posterior (Tomczak and Welling, 2018), for each condition."""

    def __init__(self, *, cond_dim: int, latent_dim: int, pseudo_inputs: int = 3):
        super().__init__()
        self.k = pseudo_inputs
        self.model = None

    def attach(self, model):
        self.model = model  # a ModelView: not a module, so the encoder stays out of this state_dict
        self.pseudo = nn.Parameter(torch.rand(self.k, *model.image_shape))  # the size only the model knows

    def components(self, cond):
        b = cond.vector.shape[0]
        x = self.pseudo.clamp(0, 1).repeat(b, 1, 1, 1)  # row i * K + k: u_k under condition i
        mu, logvar = self.model.posterior(x, cond.index(torch.arange(b, device=x.device).repeat_interleave(self.k)))
        return mu.view(b, self.k, -1), logvar.view(b, self.k, -1)

    def log_prob(self, z, cond):
        mu, logvar = self.components(cond)
        return torch.logsumexp(gaussian_log_prob(z[:, None].float(), mu, logvar), dim=1) - math.log(self.k)

    def sample(self, cond, generator=None, temperature=1.0):
        mu, logvar = self.components(cond)
        return mixture_draw(torch.zeros(mu.shape[:2], device=mu.device), mu, (0.5 * logvar).exp(), generator, temperature)


class BadAttach(TinyVamp):
    def attach(self, model):
        raise KeyError("encoder")


@pytest.fixture
def registry():
    registry = load_registry()
    registry.add("prior", "tiny_vamp", TinyVamp, origin="test-pkg 1.0")
    registry.add("prior", "bad_attach", BadAttach, origin="test-pkg 1.0")
    return registry


def small(recipe, prior):
    recipe["train"].update(epochs=1, limit=256)
    recipe["eval"]["limit"] = 64
    recipe["model"]["prior"] = prior
    return recipe


def test_a_vamp_prior_uses_the_models_encoder_through_attach_and_survives_a_reload(tiny_fashion, registry):
    run = train(small(tiny_fashion, "tiny_vamp"), registry=registry, progress=False)
    model = load_run(run, registry=registry).model
    prior = model.prior
    assert isinstance(prior.model, ModelView) and prior.model.image_shape == (1, 28, 28)
    assert prior.model.latent_dim == model.latent_dim == 8 and prior.model.cond_dim == model.conditioner.dim
    state = model.state_dict()
    assert [k for k in state if k.startswith("prior.")] == ["prior.pseudo"]  # no second copy of the encoder
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]["prior.pseudo"]
    assert torch.equal(prior.pseudo, saved)

    cond = model.condition(torch.tensor([3, 7]))
    z = torch.randn(2, 8)
    mu, logvar = model.encoder(prior.pseudo.clamp(0, 1).repeat(2, 1, 1, 1), cond.index(torch.tensor([0, 0, 0, 1, 1, 1])))
    by_hand = torch.logsumexp(gaussian_log_prob(z[:, None], mu.view(2, 3, 8), logvar.view(2, 3, 8)), 1) - math.log(3)
    assert torch.allclose(prior.log_prob(z, cond), by_hand, atol=1e-5)
    prior.log_prob(z, cond).sum().backward()  # the pseudo-inputs learn through the encoder
    assert prior.pseudo.grad is not None and prior.pseudo.grad.abs().sum() > 0
    images = model.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28) and torch.isfinite(images).all()
    with torch.no_grad():  # the prior is the encoder's q(z | u_k, c): change the encoder, the prior follows
        for p in model.encoder.parameters():
            p.mul_(0.5)
    assert not torch.allclose(prior.log_prob(z, cond), by_hand, atol=1e-3)


def test_fit_prior_attaches_a_fresh_vamp_prior_before_fitting_it(tiny_fashion, registry):
    run = train(small(tiny_fashion, None), registry=registry, progress=False)
    result = fit_prior(run, "tiny_vamp", ["pseudo_inputs=2"], epochs=1, registry=registry, progress=False,
                       measure=False)
    fitted = load_run(run, registry=registry).model.prior
    assert result.path.is_file() and type(fitted).__name__ == "TinyVamp" and fitted.pseudo.shape == (2, 1, 28, 28)
    assert isinstance(fitted.model, ModelView)


def test_a_prior_whose_attach_raises_is_named(tiny_fashion, registry):
    with pytest.raises(ComponentError, match=r"The prior 'bad_attach' \(from test-pkg 1.0\) raised in "
                                             r"attach\(model\): KeyError: 'encoder'"):
        train(small(tiny_fashion, "bad_attach"), registry=registry, progress=False)


def test_check_prior_attaches_a_probe_model_and_holds_a_vamp_prior_to_the_contract(registry):
    check_component("prior", "tiny_vamp", registry=registry)
    with pytest.raises(ContractError, match=r"prior 'bad_attach' breaks the contract point 'attach': raised KeyError"):
        check_component("prior", "bad_attach", registry=registry)
