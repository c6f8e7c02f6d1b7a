"""The prior p(z | c) a CVAE samples from, and the KL term it puts in the loss.

With no `model.prior` the prior is the study's N(0, I) for every condition. A `prior`
component instead maps the condition to a Gaussian: forward(cond) -> (mu, logvar), each
[B, latent_dim]. The engine draws z from it and puts KL(q || p) in the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from .condition import Condition
from .errors import CvaekitError

Gaussian = tuple[torch.Tensor, torch.Tensor]  # (mu, logvar), each [B, latent_dim]


def prior_of(prior: nn.Module | None, cond: Condition) -> Gaussian | None:
    """The prior's (mu, logvar) for `cond`; None stands for N(0, I)."""
    return None if prior is None else prior(cond)


def sample_latent(prior: nn.Module | None, cond: Condition, latent_dim: int,
                  generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """One z per condition from the prior (drawn on the CPU when `generator` is given).

    `temperature` scales the prior's spread: 1 samples the prior itself, below 1 draws z
    nearer the prior's mean (more typical, less varied images), 0 gives the mean."""
    if not temperature >= 0:
        raise CvaekitError(f"The sampling temperature must be 0 or more (1 samples the prior itself); got {temperature}.")
    eps = temperature * torch.randn(cond.vector.shape[0], latent_dim, generator=generator).to(cond.vector.device)
    gaussian = prior_of(prior, cond)
    if gaussian is None:
        return eps
    mu, logvar = gaussian
    return mu + eps.to(mu.dtype) * torch.exp(0.5 * logvar)


def kl_divergence(posterior: Gaussian, prior: Gaussian | None) -> torch.Tensor:
    """KL(q || p) summed over latent dimensions and the batch; p = N(0, I) when None."""
    mu, logvar = (t.float() for t in posterior)
    if prior is None:
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    prior_mu, prior_logvar = (t.float() for t in prior)
    return 0.5 * torch.sum(prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)
