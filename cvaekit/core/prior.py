"""The prior p(z | c) a CVAE samples from, and the KL term it puts in the loss.

With no `model.prior` the prior is the study's N(0, I) for every condition. A `prior`
component is a distribution over z given the condition, an `nn.Module` with

    log_prob(z, cond) -> [B]                                  log p(z | c), summed over z's dims
    sample(cond, generator=None, temperature=1.0) -> [B, latent_dim]

A diagonal Gaussian prior also gives `gaussian(cond) -> (mu, logvar)`; subclass
`GaussianPrior` and write only that. The KL term is then analytic, as in the study; for any
other prior it is the Monte Carlo estimate log q(z | x) - log p(z | c) at the sampled z.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import CvaekitError

Gaussian = tuple[torch.Tensor, torch.Tensor]  # (mu, logvar), each [B, latent_dim]

CONTRACT = ("a prior gives log_prob(z, cond) -> [B] and sample(cond, generator=None, temperature=1.0) "
            "-> [B, latent_dim]; a diagonal Gaussian prior can subclass cvaekit.prior.GaussianPrior and "
            "define only gaussian(cond) -> (mu, logvar)")


def check_temperature(temperature: float) -> None:
    if not temperature >= 0:
        raise CvaekitError(f"The sampling temperature must be 0 or more (1 samples the prior itself); got {temperature}.")


def noise(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None,
          temperature: float) -> torch.Tensor:
    """Standard normal noise scaled by `temperature`, drawn on the CPU when `generator` is given
    (so a seed gives the same pictures on every device), in `like`'s device and dtype."""
    check_temperature(temperature)
    if generator is None:
        eps = torch.randn(shape, device=like.device)
    else:
        eps = torch.randn(shape, generator=generator)
    return (temperature * eps).to(like.device, like.dtype)


def mixture_draw(logits: torch.Tensor, mu: torch.Tensor, std: torch.Tensor,
                 generator: torch.Generator | None, temperature: float) -> torch.Tensor:
    """One draw per row from diagonal Gaussian mixtures (logits [B, K], means and spreads
    [B, K, D]): a component by its weight, then its mean + temperature * its spread * eps."""
    check_temperature(temperature)
    probs = logits.float().softmax(-1).detach().cpu()
    pick = torch.multinomial(probs, 1, generator=generator).to(mu.device)[:, 0]
    rows = torch.arange(mu.shape[0], device=mu.device)
    mu, std = mu[rows, pick], std[rows, pick]
    return mu + noise(tuple(mu.shape), mu, generator, temperature) * std


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


class GaussianPrior(nn.Module):
    """A diagonal Gaussian per condition: define `gaussian(cond) -> (mu, logvar)`."""

    def gaussian(self, cond: Condition) -> Gaussian:
        raise NotImplementedError

    def forward(self, cond: Condition) -> Gaussian:
        return self.gaussian(cond)

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        mu, logvar = self.gaussian(cond)
        return gaussian_log_prob(z.float(), mu.float(), logvar.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """mu + temperature * sigma * eps: 1 samples the prior, 0 gives its mean."""
        mu, logvar = self.gaussian(cond)
        return mu + noise(tuple(mu.shape), mu, generator, temperature) * torch.exp(0.5 * logvar)


def check_prior_interface(prior: nn.Module, name: str) -> None:
    """A prior written for the old contract (forward -> (mu, logvar) only) says what to change."""
    missing = [m for m in ("log_prob", "sample") if not callable(getattr(prior, m, None))]
    if missing:
        raise CvaekitError(f"Prior '{name}' has no {' or '.join(missing)}: {CONTRACT}.")


def sample_latent(prior: nn.Module | None, cond: Condition, latent_dim: int,
                  generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """One z per condition from the prior (noise drawn on the CPU when `generator` is given).

    `temperature` scales the prior's spread: 1 samples the prior itself, below 1 draws z
    nearer the prior's typical values (more typical, less varied images), 0 gives the mode
    of a Gaussian (a flow's image of the base distribution's mean)."""
    if prior is None:
        return noise((cond.vector.shape[0], latent_dim), cond.vector, generator, temperature)
    return prior.sample(cond, generator=generator, temperature=temperature)


def kl_term(posterior: Gaussian, z: torch.Tensor, prior: nn.Module | None, cond: Condition) -> torch.Tensor:
    """KL(q(z | x) || p(z | c)) summed over latent dimensions and the batch: analytic when the
    prior is N(0, I) or gives `gaussian`, else log q(z) - log p(z | c) at the sampled `z`."""
    if prior is None:
        return kl_divergence(posterior, None)
    gaussian = getattr(prior, "gaussian", None)
    if callable(gaussian):
        return kl_divergence(posterior, gaussian(cond))
    mu, logvar = (t.float() for t in posterior)
    return (gaussian_log_prob(z.float(), mu, logvar) - prior.log_prob(z.float(), cond).float()).sum()


def kl_divergence(posterior: Gaussian, prior: Gaussian | None) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, summed over latent dimensions and the batch;
    p = N(0, I) when None."""
    mu, logvar = (t.float() for t in posterior)
    if prior is None:
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    prior_mu, prior_logvar = (t.float() for t in prior)
    return 0.5 * torch.sum(prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)


def kl_per_dim(posterior: Gaussian, prior: nn.Module | None, cond: Condition) -> torch.Tensor | None:
    """KL(q || p) per image and latent dimension, [B, latent_dim], where it is analytic (N(0, I)
    or a prior that gives `gaussian`); None for any other prior."""
    mu, logvar = (t.float() for t in posterior)
    if prior is None:
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    gaussian = getattr(prior, "gaussian", None)
    if not callable(gaussian):
        return None
    prior_mu, prior_logvar = (t.float() for t in gaussian(cond))
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)


def prior_log_prob(prior: nn.Module | None, z: torch.Tensor, cond: Condition) -> torch.Tensor:
    """log p(z | c) summed over z's dimensions, [B]; N(0, I) when `prior` is None."""
    if prior is None:
        return -0.5 * (math.log(2 * math.pi) + z.float().pow(2)).sum(-1)
    return prior.log_prob(z.float(), cond).float()
