"""Hierarchical latents: groups z_1 .. z_L generated top-down, each with a prior
p(z_l | z_<l, c) and a posterior q(z_l | x, z_<l, c) given relative to it (NVAE's form).

A decoder is either single-latent (`forward(z, cond)`, with the model's prior) or top-down: a
`TopDownDecoder`, which holds every group's prior itself and is paired with an encoder that
gives feature maps (`top_down = True`) instead of (mu, logvar). The objectives, sampling and
the `nll` metric take both through the functions here; nothing else needs to know.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.prior import gaussian_kl, gaussian_log_prob, noise
from cvaekit.errors import CvaekitError


@dataclass(frozen=True)
class GroupDraw:
    """How a group draws its z: at `temperature` from the prior when sampling (0: its mean),
    with `generator`; `z`, when given, is used as it is (a group held fixed); `mean` takes the
    posterior's mean instead of a draw (reconstructions)."""

    temperature: float = 1.0
    generator: torch.Generator | None = None
    z: torch.Tensor | None = None
    mean: bool = False


@dataclass
class GroupTerms:
    """A group's z and, on the posterior path, KL(q || p), log q(z) and log p(z), each [B]."""

    z: torch.Tensor
    kl: torch.Tensor | None = None
    log_q: torch.Tensor | None = None
    log_p: torch.Tensor | None = None


def _log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) of each image's whole group, [B]."""
    return gaussian_log_prob(z.flatten(1), mu.flatten(1), logvar.flatten(1))


class Group(nn.Module):
    """One latent group on the top-down path: FiLM from the text, the prior from the map, the
    posterior as a shift and rescale of the prior from the encoder's features, then z merged
    into the map through a residual cell. Priors and posteriors start as N(0, I) and the prior.
    `kernel` is the cell's convolution (1 where the map is a vector, at 1x1)."""

    def __init__(self, width: int, latent_channels: int, cond_dim: int, max_logvar: float = 2.0, kernel: int = 3):
        super().__init__()
        self.film = nn.Linear(cond_dim, 2 * width)
        self.prior = nn.Conv2d(width, 2 * latent_channels, 1)
        self.posterior = nn.Conv2d(2 * width, 2 * latent_channels, 1)
        for layer in (self.film, self.prior, self.posterior):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.merge = nn.Conv2d(latent_channels, width, 1)
        self.cell = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, kernel, padding=kernel // 2,
                                                           padding_mode="replicate"))
        self.max_logvar = max_logvar

    def forward(self, h: torch.Tensor, cond: Condition, feature: torch.Tensor | None,
                draw: GroupDraw) -> tuple[torch.Tensor, GroupTerms]:
        gamma, beta = self.film(cond.vector).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
        h = h * (1 + gamma) + beta
        mu_p, logvar_p = self.prior(h).float().chunk(2, dim=1)
        logvar_p = logvar_p.clamp(-10, self.max_logvar)
        if feature is None:
            terms = GroupTerms(self._from_prior(mu_p, logvar_p, draw))
        else:
            shift, scale = self.posterior(torch.cat([h, feature], 1)).float().chunk(2, dim=1)
            mu_q, logvar_q = mu_p + shift, (logvar_p + scale).clamp(-10, self.max_logvar)
            z = mu_q if draw.mean else mu_q + torch.randn_like(mu_q) * torch.exp(0.5 * logvar_q)
            kl = gaussian_kl((mu_q, logvar_q), (mu_p, logvar_p)).flatten(1).sum(1)
            terms = GroupTerms(z, kl, _log_prob(z, mu_q, logvar_q), _log_prob(z, mu_p, logvar_p))
        h = h + self.cell(h + self.merge(terms.z.to(h.dtype)))
        return h, terms

    @staticmethod
    def _from_prior(mu: torch.Tensor, logvar: torch.Tensor, draw: GroupDraw) -> torch.Tensor:
        if draw.z is not None:
            return draw.z.to(mu.device, mu.dtype)
        return mu + noise(tuple(mu.shape), mu, draw.generator, draw.temperature) * torch.exp(0.5 * logvar)


class TopDownDecoder(nn.Module):
    """A decoder that holds its latent groups: `top_down(cond, features, draws)` gives the output
    and each group's `GroupTerms`; `group_count` says how many groups there are."""

    group_count: int

    def top_down(self, cond: Condition, features: list[torch.Tensor] | None,
                 draws: list[GroupDraw]) -> tuple[torch.Tensor, list[GroupTerms]]:
        raise NotImplementedError


def is_top_down(model: nn.Module) -> bool:
    return isinstance(model.decoder, TopDownDecoder)


def posterior_pass(model: nn.Module, x: torch.Tensor, cond: Condition, mean: bool = False):
    """The output and group terms with every z from the posterior."""
    draws = [GroupDraw(mean=mean)] * model.decoder.group_count
    return model.decoder.top_down(cond, model.encoder(x, cond), draws)


def temperatures(value: float | list[float], groups: int) -> list[float]:
    """One temperature per group: a number for all, or a list from the top group down."""
    values = [float(value)] * groups if not isinstance(value, (list, tuple)) else [float(v) for v in value]
    if len(values) != groups:
        raise CvaekitError(f"Give one temperature, or one per latent group ({groups}); got {len(values)}.")
    return values


def prior_pass(model: nn.Module, cond: Condition, generator: torch.Generator | None,
               temperature: float | list[float] = 1.0, fixed: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The decoder's output with every z from its prior; `fixed` holds the top groups' z."""
    temps = temperatures(temperature, model.decoder.group_count)
    fixed = list(fixed or [])
    draws = [GroupDraw(t, generator, fixed[i] if i < len(fixed) else None) for i, t in enumerate(temps)]
    out, _ = model.decoder.top_down(cond, None, draws)
    return out
