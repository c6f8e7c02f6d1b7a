"""`flow`: a conditional normalizing flow over z given the condition, built on zuko.

A flow can take the shape of whatever the encoder's codes of a condition look like (several
clusters, curved ridges), so samples land where the decoder has seen codes; it is trained with
the model (Monte Carlo KL) or fitted afterwards to a trained run's codes (`cvaekit fit-prior`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from ...condition import Condition
from ...prior import noise
from ...recipe import AtLeast, PositiveInt
from .context import context_reader, read_context


class FlowPrior(nn.Module):
    """A zuko flow p(z | c): neural spline (`nsf`) or affine autoregressive (`maf`) transforms of
    a standard normal, each conditioned on the condition. The condition is its vector beside
    `queries` attention read-outs of its tokens (`context: vector` leaves the tokens out).

    kind: `nsf` (monotonic rational-quadratic splines, more flexible) or `maf` (affine, faster).
    transforms: how many conditioned transforms are stacked.
    hidden: width of the two hidden layers of each transform's network.
    bins: spline bins per dimension (`nsf` only).
    context: what the transforms are conditioned on: the condition vector and the tokens, or the vector alone.
    queries: attention read-outs of the tokens (`context: tokens`).
    heads: attention heads of those read-outs (1 when they do not divide the condition's size).
    """

    def __init__(self, *, cond_dim: int, latent_dim: int, kind: Literal["nsf", "maf"] = "nsf",
                 transforms: PositiveInt = 3, hidden: PositiveInt = 128, bins: PositiveInt = 8,
                 context: Literal["vector", "tokens"] = "tokens", queries: Annotated[int, AtLeast(1)] = 4,
                 heads: PositiveInt = 4):
        super().__init__()
        import zuko  # imported on first use: it is only needed once a flow is built

        self.summary = context_reader(context, cond_dim, queries, heads)
        context_dim = self.summary.out_dim if self.summary is not None else cond_dim
        hidden_features = (hidden, hidden)
        if kind == "nsf":
            self.flow = zuko.flows.NSF(latent_dim, context=context_dim, transforms=transforms,
                                       hidden_features=hidden_features, bins=bins)
        else:
            self.flow = zuko.flows.MAF(latent_dim, context=context_dim, transforms=transforms,
                                       hidden_features=hidden_features)
        self.latent_dim = latent_dim

    def context(self, cond: Condition) -> torch.Tensor:
        return read_context(self.summary, cond)

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self.flow(self.context(cond)).log_prob(z.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """The flow's image of temperature-scaled standard normal noise (0: of the base's mean)."""
        context = self.context(cond)
        u = noise((context.shape[0], self.latent_dim), context, generator, temperature)
        return self.flow(context).transform.inv(u)
