"""Hierarchical latents: groups z_1 .. z_L generated top-down, each with a prior
p(z_l | z_<l, c) and a posterior q(z_l | x, z_<l, c) given relative to it (NVAE's form).

A decoder is either single-latent (`forward(z, cond)`, with the model's prior) or top-down: a
`TopDownDecoder`, which holds every group's prior itself and is paired with an encoder that
gives feature maps (`top_down = True`) instead of (mu, logvar). The model reaches either through
one latent path (`cvaekit.core.latents`), where a single latent is the one-group case.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cvaekit.core.autoregressive import AutoregressivePrior
from cvaekit.core.condition import Condition
from cvaekit.core.prior import gaussian_kl, gaussian_log_prob, noise


@dataclass(frozen=True)
class GroupDraw:
    """How a group draws its z: at `temperature` from the prior when sampling (0: its mean),
    with `generator`; `z`, when given, is used as it is (a group held fixed; flat [B, D] or in
    the group's shape); `shared` draws one noise for every row of the batch (the top groups of
    a caption held while lower ones vary); `mean` takes the posterior's mean instead of a draw
    (reconstructions, codes)."""

    temperature: float = 1.0
    generator: torch.Generator | None = None
    z: torch.Tensor | None = None
    mean: bool = False
    shared: bool = False


class GroupTerms:
    """A group's z and, on the posterior path, its KL(q || p) per free-bits unit (`kl_units`
    [B, U], each unit `unit_dims` latent dimensions), log q(z) and log p(z) [B] (the KL and
    log p computed when first read: a reconstruction, a code or a VampPrior's view of the encoder
    needs neither), and the posterior's Gaussian (`mu`, `logvar`: the codes `fit-prior` fits)."""

    def __init__(self, z: torch.Tensor, kl_units=None, unit_dims: int = 1, log_q: torch.Tensor | None = None,
                 log_p: torch.Tensor | None = None, mu: torch.Tensor | None = None,
                 logvar: torch.Tensor | None = None):
        self.z, self._kl_units, self.unit_dims = z, kl_units, unit_dims
        self.log_q, self._log_p, self.mu, self.logvar = log_q, log_p, mu, logvar

    @property
    def kl_units(self) -> torch.Tensor | None:
        if callable(self._kl_units):
            self._kl_units = self._kl_units()
        return self._kl_units

    @property
    def log_p(self) -> torch.Tensor | None:
        if callable(self._log_p):
            self._log_p = self._log_p()
        return self._log_p

    @log_p.setter
    def log_p(self, value) -> None:
        self._log_p = value

    @kl_units.setter
    def kl_units(self, value) -> None:
        self._kl_units = value

    @property
    def kl(self) -> torch.Tensor:
        """KL(q || p) of each image, [B]."""
        return self.kl_units.sum(1)


def _log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) of each image's whole group, [B]."""
    return gaussian_log_prob(z.flatten(1), mu.flatten(1), logvar.flatten(1))


class Group(nn.Module):
    """One latent group on the top-down path: FiLM from the text, the prior from the map, the
    posterior as a shift and rescale of the prior from the encoder's features, then z merged
    into the map through a residual cell. Priors and posteriors start as N(0, I) and the prior.
    `kernel` is the cell's convolution (1 where the map is a vector, at 1x1), `prior_kernel` the
    prior's (3: each position's prior sees its neighbours); without `reads_text` the group sees
    the text only through the map it is given. With `autoregressive`, each position's prior also
    reads the z drawn at the positions before it (`cvaekit.core.autoregressive`); the posterior
    stays relative to the prior given the map alone."""

    def __init__(self, width: int, latent_channels: int, cond_dim: int, max_logvar: float = 2.0, kernel: int = 3,
                 reads_text: bool = True, prior_kernel: int = 1, autoregressive: bool = False):
        super().__init__()
        self.film = nn.Linear(cond_dim, 2 * width) if reads_text else None
        self.prior = nn.Conv2d(width, 2 * latent_channels, prior_kernel, padding=prior_kernel // 2,
                               padding_mode="replicate")
        self.posterior = nn.Conv2d(2 * width, 2 * latent_channels, 1)
        for layer in (self.film, self.prior, self.posterior):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.merge = nn.Conv2d(latent_channels, width, 1)
        self.cell = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, kernel, padding=kernel // 2,
                                                           padding_mode="replicate"))
        self.max_logvar = max_logvar
        self.autoregressive = AutoregressivePrior(width, latent_channels) if autoregressive else None

    def forward(self, h: torch.Tensor, cond: Condition, feature: torch.Tensor | None,
                draw: GroupDraw) -> tuple[torch.Tensor, GroupTerms]:
        if self.film is not None:
            gamma, beta = self.film(cond.vector).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        mu_p, logvar_p = self.prior(h).float().chunk(2, dim=1)
        logvar_p = logvar_p.clamp(-10, self.max_logvar)
        if feature is None:
            terms = GroupTerms(self._from_prior(h, mu_p, logvar_p, draw))
        else:
            shift, scale = self.posterior(torch.cat([h, feature], 1)).float().chunk(2, dim=1)
            mu_q, logvar_q = mu_p + shift, (logvar_p + scale).clamp(-10, self.max_logvar)
            z = mu_q if draw.mean else mu_q + torch.randn_like(mu_q) * torch.exp(0.5 * logvar_q)
            if self.autoregressive is not None:  # the prior given the z before each position, teacher forced
                mu_p, logvar_p = self.autoregressive.corrected(z, h, (mu_p, logvar_p), self.max_logvar)
            kl = gaussian_kl((mu_q, logvar_q), (mu_p, logvar_p)).flatten(1).sum(1, keepdim=True)
            terms = GroupTerms(z, kl, z[0].numel(), _log_prob(z, mu_q, logvar_q), _log_prob(z, mu_p, logvar_p),
                               mu_q, logvar_q)
        h = h + self.cell(h + self.merge(terms.z.to(h.dtype)))
        return h, terms

    def _from_prior(self, h: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, draw: GroupDraw) -> torch.Tensor:
        if draw.z is not None:
            return draw.z.to(mu.device, mu.dtype).reshape(mu.shape)
        shape = (1, *mu.shape[1:]) if draw.shared else tuple(mu.shape)
        eps = noise(shape, mu, draw.generator, draw.temperature)
        if self.autoregressive is not None:
            return self.autoregressive.sample(h, (mu, logvar), eps.expand_as(mu), self.max_logvar)
        return mu + eps * torch.exp(0.5 * logvar)


class TopDownDecoder(nn.Module):
    """A decoder that holds its latent groups: `top_down(cond, features, draws)` gives the output
    and each group's `GroupTerms` (from the posterior when the encoder's `features` are given,
    else from the priors); `group_shapes` is each group's z shape (C, h, w), from the top."""

    group_shapes: list[tuple[int, ...]]

    def top_down(self, cond: Condition, features: list[torch.Tensor] | None,
                 draws: list[GroupDraw]) -> tuple[torch.Tensor, list[GroupTerms]]:
        raise NotImplementedError
