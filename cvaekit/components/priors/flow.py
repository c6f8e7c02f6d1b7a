"""`flow`: a conditional normalizing flow over z given the condition, built on zuko.

A flow can take the shape of whatever the encoder's codes of a condition look like (several
clusters, curved ridges), so samples land where the decoder has seen codes; it is trained with
the model (Monte Carlo KL) or fitted afterwards to a trained run's codes (`cvaekit fit-prior`).
A flow is a smooth map, so from one Gaussian it cannot tear the space into separate clusters
without leaving mass on the paths between them (where the decoder draws a blend); from a
mixture base (`components` > 1) each cluster can have its own component.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from cvaekit.components.priors.context import context_reader, read_context
from cvaekit.core.condition import Condition
from cvaekit.core.prior import find_mode, mixture_draw, noise
from cvaekit.recipe import AtLeast, PositiveInt


class FlowPrior(nn.Module):
    """A zuko flow p(z | c): neural spline (`nsf`) or affine autoregressive (`maf`) transforms of
    a standard normal (or of a mixture of Gaussians), each conditioned on the condition. The
    condition is its vector beside `queries` attention read-outs of its tokens (`context: vector`
    leaves the tokens out).

    kind: `nsf` (monotonic rational-quadratic splines, more flexible) or `maf` (affine, faster).
    transforms: how many conditioned transforms are stacked.
    hidden: width of the two hidden layers of each transform's network.
    bins: spline bins per dimension (`nsf` only).
    context: what the transforms are conditioned on: the condition vector and the tokens, or the vector alone.
    queries: attention read-outs of the tokens (`context: tokens`).
    heads: attention heads of those read-outs (1 when they do not divide the condition's size).
    components: Gaussians in the base, their weights, means and spreads set by the condition (1: a standard normal).
    """

    def __init__(self, *, cond_dim: int, latent_dim: int, kind: Literal["nsf", "maf"] = "nsf",
                 transforms: PositiveInt = 3, hidden: PositiveInt = 128, bins: PositiveInt = 8,
                 context: Literal["vector", "tokens"] = "tokens", queries: Annotated[int, AtLeast(1)] = 4,
                 heads: PositiveInt = 4, components: PositiveInt = 1):
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
        if components > 1:
            self.flow.base = zuko.flows.GMM(latent_dim, context=context_dim, components=components,
                                            covariance_type="diagonal", hidden_features=hidden_features)
        self.components = components
        self.latent_dim = latent_dim

    def context(self, cond: Condition) -> torch.Tensor:
        return read_context(self.summary, cond)

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self.flow(self.context(cond)).log_prob(z.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """The flow's image of a base draw at `temperature`: temperature-scaled standard normal
        noise, or for a mixture base a component by its tempered weight, then its mean +
        temperature * its spread * eps. At 0, the flow's mode (`mode`)."""
        if temperature == 0:
            return self.mode(cond)
        context = self.context(cond)
        dist = self.flow(context)
        if self.components == 1:
            u = noise((context.shape[0], self.latent_dim), context, generator, temperature)
        else:
            mix = dist.base  # zuko Mixture of DiagNormal [B, K, D]
            u = mixture_draw(mix.logits, mix.base.mean, mix.base.stddev, generator, temperature)
        return dist.transform.inv(u)

    def mode(self, cond: Condition, draws: int = 8) -> torch.Tensor:
        """The most typical z: climbs of log p(z | c) (`find_mode`) from the flow's image of the
        base's mode (of each component's mean, for a mixture base) and of `draws` fixed base
        draws (a flow can have several modes); the highest end point. Deterministic."""
        context = self.context(cond)
        b, d = context.shape[0], self.latent_dim
        with torch.no_grad():
            if self.components == 1:
                u = torch.zeros(1, b, d, device=context.device)
            else:
                u = self.flow(context).base.base.mean.float().transpose(0, 1)  # [K, B, D]
            spread = torch.randn(draws, 1, d, generator=torch.Generator().manual_seed(0))  # the same for every row
            spread = spread.to(u.device).expand(-1, b, -1)
            u = torch.cat([u, spread]).reshape(-1, d)  # start s of row i at s * B + i
            wide = context.repeat(u.shape[0] // b, 1)
            starts = self.flow(wide).transform.inv(u)
        z = find_mode(lambda x: self.flow(wide).log_prob(x), starts)
        with torch.no_grad():
            density = self.flow(wide).log_prob(z).view(-1, b)  # [starts per row, B]
        return z.view(-1, b, d)[density.argmax(0), torch.arange(b, device=z.device)]
