"""Objectives and the nll metric: IWAE with k = 1 is the ELBO, the KL schedules and free bits
follow their curves, KL balancing charges each group by its share, and the importance-sampled
NLL is exact where the answer is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cvaekit.components.metrics.nll import ImportanceSampledNLL
from cvaekit.core.condition import Condition
from cvaekit.assembly import build_model
from cvaekit.core.data import DataInfo, DataSource, Split
from cvaekit.core.model import CVAE
from cvaekit.core.objectives import Objective, balanced, elbo_terms, iwae_terms, log_weights
from cvaekit.evaluation.context import EvalContext
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.training.schedules import kl_weight

D, LATENT, SIGMA = 3, 2, 0.5


class NoText(nn.Module):
    dim = 1

    def forward(self, raw):
        return torch.zeros(len(raw), 1)


class LinearEncoder(nn.Module):
    """q(z | x) = N(A x + a, diag exp(logvar))."""

    def __init__(self, a, offset, logvar):
        super().__init__()
        self.a, self.offset, self.logvar = a, offset, logvar

    def forward(self, x, cond):
        mu = x.flatten(1) @ self.a.T + self.offset
        return mu, self.logvar.expand_as(mu)


class LinearDecoder(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = nn.Parameter(w), b

    def forward(self, z, cond):
        return (z @ self.w.T + self.b).view(-1, D, 1, 1)


class ContinuousGaussian(nn.Module):
    """N(out, SIGMA^2) per value, a density (no dequantisation): the linear-Gaussian model's."""

    bits = False

    def out_channels(self, channels):
        return channels

    def log_prob(self, x, out):
        return (-0.5 * math.log(2 * math.pi * SIGMA ** 2) - 0.5 * ((x - out) / SIGMA) ** 2).flatten(1).sum(1)

    def mean(self, out):
        return out


def linear_gaussian(exact_posterior: bool):
    """p(z) = N(0, I), p(x | z) = N(W z + b, SIGMA^2 I): p(x) = N(b, W W^T + SIGMA^2 I). W's
    columns are orthogonal, so the exact posterior is a diagonal Gaussian, which an encoder can
    give exactly; `exact_posterior=False` shifts and widens it."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, LATENT, generator=gen))
    w, b = q * torch.tensor([1.5, 0.7]), torch.randn(D, generator=gen)
    cov = torch.diag(1 / (1 + (w * w).sum(0) / SIGMA ** 2))  # the exact posterior's covariance
    a = cov @ w.T / SIGMA ** 2
    offset, logvar = -a @ b, torch.log(torch.diagonal(cov))
    if not exact_posterior:
        offset, logvar = offset + 0.2, logvar + 0.3
    model = CVAE(NoText(), LinearEncoder(a, offset, logvar), LinearDecoder(w, b), LATENT,
                 DataInfo((D, 1, 1)), likelihood=ContinuousGaussian())
    marginal = torch.distributions.MultivariateNormal(b, w @ w.T + SIGMA ** 2 * torch.eye(D))
    return model, marginal


def context(model, x):
    """An EvalContext over images `x` (Split holds 8-bit values; float ones x 255 read back as x)."""
    split = Split(x.view(-1, D, 1, 1) * 255, torch.zeros(len(x), dtype=torch.long))
    return EvalContext(model, DataSource(split, split, ["x"]), split, batch_size=64)


def test_nll_is_exact_on_a_linear_gaussian_model_with_its_exact_posterior():
    model, marginal = linear_gaussian(exact_posterior=True)
    x = marginal.sample((20,))
    torch.manual_seed(0)
    nll = ImportanceSampledNLL(samples=3, chunk=2).per_image(context(model, x))
    assert torch.allclose(nll, -marginal.log_prob(x).double(), atol=1e-4)


def test_nll_converges_to_the_truth_with_a_poor_posterior_and_bounds_it_from_above():
    model, marginal = linear_gaussian(exact_posterior=False)
    x = marginal.sample((200,))
    torch.manual_seed(0)
    result = ImportanceSampledNLL(samples=500, chunk=100)(context(model, x))
    truth = -marginal.log_prob(x).mean().item()
    assert result["nll"] == pytest.approx(truth, abs=3 * result["nll_se"] + 0.01)
    one = ImportanceSampledNLL(samples=1)(context(model, x))["nll"]
    assert one > result["nll"]  # one sample is the ELBO: a looser bound


def test_iwae_with_one_sample_is_the_elbo_with_a_monte_carlo_kl():
    model, marginal = linear_gaussian(exact_posterior=False)
    x = marginal.sample((16,)).view(-1, D, 1, 1)
    cond = Condition.of(torch.zeros(16, 1))
    torch.manual_seed(3)
    iwae = iwae_terms(model, x, cond, Objective("iwae", k=1))
    torch.manual_seed(3)
    parts = log_weights(model, x, cond, 1)
    assert iwae["loss"].item() == pytest.approx(-parts["weights"].mean().item(), rel=1e-6)
    torch.manual_seed(4)
    analytic = elbo_terms(model, x, cond, Objective())["loss"].item()
    assert iwae["loss"].item() == pytest.approx(analytic, rel=0.5)  # the same bound, estimated two ways
    torch.manual_seed(3)
    assert iwae_terms(model, x, cond, Objective("iwae", k=50))["loss"] < iwae["loss"]


def test_free_bits_charge_at_least_their_floor_and_report_the_true_kl():
    model, marginal = linear_gaussian(exact_posterior=True)
    x = marginal.sample((8,)).view(-1, D, 1, 1)
    cond = Condition.of(torch.zeros(8, 1))
    torch.manual_seed(0)
    plain = elbo_terms(model, x, cond, Objective())
    torch.manual_seed(0)
    floored = elbo_terms(model, x, cond, Objective(free_bits=50.0))
    assert floored["kl"].item() == pytest.approx(plain["kl"].item())
    assert floored["loss"].item() == pytest.approx(plain["recon"].item() + 50.0 * LATENT)


def hierarchical_model():
    spec = {"latent_dim": 2, "conditioner": "onehot", "encoder": {"name": "ladder", "width": 8, "levels": 2},
            "decoder": {"name": "ladder", "width": 8, "levels": 2}}
    recipe = load_recipe({"name": "t", "data": "fashion_mnist", "model": spec})
    net = build_model(recipe.model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())
    for group in net.decoder.cells:  # q away from p, so that every group has a KL
        torch.nn.init.normal_(group.posterior.weight, std=0.5)
    return net


def test_kl_balancing_charges_each_group_by_its_share_and_leaves_equal_groups_alone():
    group_kl = torch.tensor([1.0, 3.0], requires_grad=True)
    balanced(group_kl).sum().backward()
    shares = torch.tensor([1.01, 3.01])
    assert torch.allclose(group_kl.grad, shares / shares.mean())  # a nat costs more in the fuller group
    even = torch.tensor([2.0, 2.0, 2.0])
    assert torch.allclose(balanced(even), even)
    net = hierarchical_model()
    x, labels = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    torch.manual_seed(0)
    plain = net(x, labels)
    torch.manual_seed(0)
    weighed = net(x, labels, Objective(balance=True))
    assert weighed["kl"].item() == pytest.approx(plain["kl"].item())  # the reported KL stays the true one
    expected = plain["recon"] + balanced(plain["kl_groups"]).sum()
    assert weighed["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_kl_schedules_follow_their_curves():
    assert [kl_weight(2.0, "constant", s, 100) for s in (0, 50)] == [2.0, 2.0]
    assert [kl_weight(1.0, "linear", s, 100, warmup=10) for s in (0, 5, 10, 99)] == [0.0, 0.5, 1.0, 1.0]
    cyc = [kl_weight(1.0, "cyclical", s, 100, cycles=4, ratio=0.5) for s in range(100)]
    assert cyc[0] == 0.0 and cyc[12] == pytest.approx(12 / 12.5) and cyc[13:25] == [1.0] * 12 and cyc[25] == 0.0

