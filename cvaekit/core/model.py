"""The CVAE: q(z | x, c), p(x | z, c) and p(z | c) around a conditioner, and its objective.

Torch only: the parts are built elsewhere (`cvaekit.assembly`) and handed in."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo, RawConditions
from cvaekit.core.hierarchy import is_top_down, posterior_pass, prior_pass
from cvaekit.core.likelihood import Bernoulli
from cvaekit.core.objectives import OBJECTIVES, Objective
from cvaekit.core.prior import sample_latent


class InjectionStack(nn.ModuleList):
    """The injections placed at one stage, applied in recipe order: (h, cond) -> h'."""

    def __init__(self, modules, out_channels: int):
        super().__init__(modules)
        self.out_channels = out_channels

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        for inj in self:
            h = inj(h, cond)
        return h


class CVAE(nn.Module):
    """q(z | x, c) by the encoder, p(x | z, c) by the decoder and the likelihood, p(z | c) by the
    prior, c by the conditioner."""

    def __init__(self, conditioner: nn.Module, encoder: nn.Module, decoder: nn.Module,
                 latent_dim: int, data_info: DataInfo, prior: nn.Module | None = None,
                 likelihood: nn.Module | None = None):
        super().__init__()
        self.conditioner = conditioner
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior  # None: N(0, I)
        self.likelihood = likelihood if likelihood is not None else Bernoulli()
        self.latent_dim = latent_dim
        self.data_info = data_info

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def condition(self, raw: RawConditions | Condition) -> Condition:
        """The conditioner's output for `raw`; a Condition (rows of a frozen conditioner's
        table, see training/batches.py) is taken as it is."""
        if isinstance(raw, torch.Tensor):
            raw = raw.to(self.device)
        cond = raw if isinstance(raw, Condition) else Condition.of(self.conditioner(raw))
        return Condition(cond.vector.to(self.device), cond.tokens.to(self.device),
                         None if cond.mask is None else cond.mask.to(self.device))

    def forward(self, x: torch.Tensor, raw: RawConditions, objective: Objective = Objective()) -> dict[str, torch.Tensor]:
        """The loss terms for images `x` under conditions `raw`, in nats per image (see
        `cvaekit.core.objectives`). Computed inside the module call, so that under DDP the
        prior's and the likelihood's gradients are synchronised with the rest."""
        return OBJECTIVES[objective.kind](self, x, self.condition(raw), objective)

    def loss(self, x: torch.Tensor, raw: RawConditions, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Negative ELBO terms in nats per image."""
        return self(x, raw, Objective(kl_weight=kl_weight))

    @torch.no_grad()
    def sample(self, raw: RawConditions, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """One image in [0, 1] per condition (the likelihood's mean) from z drawn from the prior
        (see `sample_latent` for `temperature`)."""
        cond = self.condition(raw)
        if is_top_down(self):  # a temperature per group, from the top, or one for all
            return self.likelihood.mean(prior_pass(self, cond, generator, temperature))
        z = sample_latent(self.prior, cond, self.latent_dim, generator, temperature)
        return self.likelihood.mean(self.decoder(z, cond))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, raw: RawConditions) -> torch.Tensor:
        """Images decoded from the posterior mean."""
        return self.likelihood.mean(self.decode_mean(x.to(self.device), self.condition(raw)))

    def decode_mean(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The decoder's output with z at the posterior's mean (every group's, top-down)."""
        if is_top_down(self):
            return posterior_pass(self, x, cond, mean=True)[0]
        mu, _ = self.encoder(x, cond)
        return self.decoder(mu, cond)


def elbo(logits: torch.Tensor, kl: torch.Tensor, x: torch.Tensor, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The study's negative ELBO from decoder logits under a Bernoulli likelihood: BCE summed
    over pixels plus KL (`kl`, summed over the batch), averaged over the batch (nats per image)."""
    recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / x.shape[0]
    kl = kl / x.shape[0]
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}
