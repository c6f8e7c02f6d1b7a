"""`mixture`: K diagonal Gaussians per condition, their weights, means and scales a function
of the condition.

One Gaussian per condition covers the several clusters a caption's codes form (one per
layout, or per style of a class) with one blob whose mean decodes to an average of them; a
mixture can put one component on each.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import distributions as D
from torch import nn

from cvaekit.components.priors.context import context_reader, read_context
from cvaekit.core.condition import Condition
from cvaekit.core.prior import mixture_draw
from cvaekit.recipe import AtLeast, PositiveInt


class MixturePrior(nn.Module):
    """A mixture of `components` diagonal Gaussians whose weights, means and scales depend on the
    condition through an MLP with one hidden layer of `hidden` units (0: linear). The MLP reads
    the condition vector and `queries` attention read-outs of its tokens (`context: vector`
    leaves the tokens out).

    components: the number of Gaussians (K) in each condition's mixture.
    hidden: units of the MLP's hidden layer (SiLU); 0 maps the condition linearly.
    context: what the MLP reads: the condition vector and the tokens, or the vector alone.
    queries: attention read-outs of the tokens (`context: tokens`).
    heads: attention heads of those read-outs (1 when they do not divide the condition's size)."""

    def __init__(self, *, cond_dim: int, latent_dim: int, components: PositiveInt = 10,
                 hidden: Annotated[int, AtLeast(0)] = 256, context: Literal["vector", "tokens"] = "tokens",
                 queries: PositiveInt = 4, heads: PositiveInt = 4):
        super().__init__()
        self.k, self.latent_dim = components, latent_dim
        self.summary = context_reader(context, cond_dim, queries, heads)
        width = self.summary.out_dim if self.summary is not None else cond_dim
        out = components * (1 + 2 * latent_dim)
        body = [nn.Linear(width, hidden), nn.SiLU()] if hidden > 0 else []
        self.net = nn.Sequential(*body, nn.Linear(hidden if hidden > 0 else width, out))
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():  # equal weights, unit scales, means spread so components can separate
            last.bias.zero_()
            means = torch.randn(components, latent_dim)
            last.bias[components:components * (1 + latent_dim)] = means.flatten()

    def parts(self, cond: Condition) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weight logits [B, K], means [B, K, D] and log standard deviations [B, K, D]."""
        out = self.net(read_context(self.summary, cond)).float()
        b, k, d = out.shape[0], self.k, self.latent_dim
        logits = out[:, :k]
        mu = out[:, k:k * (1 + d)].view(b, k, d)
        log_std = out[:, k * (1 + d):].view(b, k, d).clamp(-7, 5)
        return logits, mu, log_std

    def distribution(self, cond: Condition) -> D.MixtureSameFamily:
        logits, mu, log_std = self.parts(cond)
        return D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(mu, log_std.exp()), 1))

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self.distribution(cond).log_prob(z.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """A component by its weight tempered to the temperature (`tempered_logits`: the mixture
        raised to the power 1 / T^2), then its mean + temperature * its spread * eps; at 0, the
        mixture's mode (`mixture_mode`)."""
        logits, mu, log_std = self.parts(cond)
        return mixture_draw(logits, mu, log_std.exp(), generator, temperature)
