"""The prior p(z | c) a CVAE samples from, and the KL term it puts in the loss.

`standard` is the study's N(0, I) for every condition. `conditional` is the prior network
of the original CVAE (Sohn et al., 2015): a Gaussian whose mean and log-variance are a linear
map of the condition vector. Samples for a condition then come from where that condition's
training images were encoded, instead of from a region the decoder may never have seen.
"""

from __future__ import annotations

import torch
from torch import nn

from .condition import Condition

Gaussian = tuple[torch.Tensor, torch.Tensor]  # (mu, logvar), each [B, latent_dim]


class StandardPrior(nn.Module):
    """N(0, I), whatever the condition. Has no parameters; `forward` returns None."""

    def __init__(self, cond_dim: int, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, cond: Condition) -> Gaussian | None:
        return None

    def sample(self, cond: Condition, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(cond.vector.shape[0], self.latent_dim, generator=generator)
        return eps.to(cond.vector.device)


class ConditionalPrior(StandardPrior):
    """N(mu(c), diag exp(logvar(c))), linear in the condition vector; starts as N(0, I)."""

    def __init__(self, cond_dim: int, latent_dim: int):
        super().__init__(cond_dim, latent_dim)
        self.net = nn.Linear(cond_dim, 2 * latent_dim)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def forward(self, cond: Condition) -> Gaussian:
        mu, logvar = self.net(cond.vector.float()).chunk(2, dim=1)
        return mu, logvar

    def sample(self, cond: Condition, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self(cond)
        return mu + super().sample(cond, generator) * torch.exp(0.5 * logvar)


PRIORS = {"standard": StandardPrior, "conditional": ConditionalPrior}


def kl_divergence(posterior: Gaussian, prior: Gaussian | None) -> torch.Tensor:
    """KL(q || p) summed over latent dimensions and the batch; p = N(0, I) when None."""
    mu, logvar = (t.float() for t in posterior)
    if prior is None:
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    prior_mu, prior_logvar = (t.float() for t in prior)
    return 0.5 * torch.sum(prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)
