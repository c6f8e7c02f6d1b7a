"""`flow`: a conditional normalizing flow over z given the condition vector, built on zuko.

A flow can take the shape of whatever the encoder's codes of a condition look like (several
clusters, curved ridges), so samples land where the decoder has seen codes; it is trained with
the model (Monte Carlo KL) or fitted afterwards to a trained run's codes (`cvaekit fit-prior`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ...condition import Condition
from ...prior import noise
from ...recipe import PositiveInt


class FlowPrior(nn.Module):
    """A zuko flow p(z | c): neural spline (`nsf`) or affine autoregressive (`maf`) transforms of
    a standard normal, each conditioned on the condition vector."""

    def __init__(self, *, cond_dim: int, latent_dim: int, kind: Literal["nsf", "maf"] = "nsf",
                 transforms: PositiveInt = 3, hidden: PositiveInt = 128, bins: PositiveInt = 8):
        super().__init__()
        import zuko  # imported on first use: it is only needed once a flow is built

        hidden_features = (hidden, hidden)
        if kind == "nsf":
            self.flow = zuko.flows.NSF(latent_dim, context=cond_dim, transforms=transforms,
                                       hidden_features=hidden_features, bins=bins)
        else:
            self.flow = zuko.flows.MAF(latent_dim, context=cond_dim, transforms=transforms,
                                       hidden_features=hidden_features)
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self.flow(cond.vector.float()).log_prob(z.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """The flow's image of temperature-scaled standard normal noise (0: of the base's mean)."""
        dist = self.flow(cond.vector.float())
        u = noise((cond.vector.shape[0], self.latent_dim), cond.vector.float(), generator, temperature)
        return dist.transform.inv(u)
