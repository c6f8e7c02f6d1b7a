"""`conditional`: the prior network of the original CVAE (Sohn et al., 2015).

A Gaussian whose mean and log-variance are a linear map of the condition vector. Samples for
a condition then come from where that condition's training images were encoded, instead of
from a region of N(0, I) the decoder may never have seen.
"""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.prior import GaussianPrior


class ConditionalPrior(GaussianPrior):
    """N(mu(c), diag exp(logvar(c))), linear in the condition vector; starts as N(0, I)."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(cond_dim, 2 * latent_dim)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def gaussian(self, cond: Condition) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(cond.vector).chunk(2, dim=1)
        return mu, logvar
