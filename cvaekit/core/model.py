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


class ModelView:
    """What a prior's `attach(model)` receives: the model it belongs to, seen from outside its
    module tree (a plain object, so keeping it in the prior adds no weights to the prior's
    state_dict and no loop to the model's). A VampPrior computes q(z | u_k, c) at its
    pseudo-inputs u_k with `posterior`.

    posterior(x, cond) -> (mu, logvar): the encoder's q(z | x, c) for images x [B, C, H, W]
        in [0, 1] and a `Condition` cond, each [B, latent_dim] (with gradients);
    decode(z, cond) -> logits [B, C, H, W]: the decoder's p(x | z, c), before the sigmoid;
    condition(raw) -> Condition: the conditioner's output for raw conditions;
    image_shape, latent_dim, cond_dim, data_info, device.
    """

    def __init__(self, model: CVAE):
        self._model = model

    def posterior(self, x: torch.Tensor, cond: Condition) -> tuple[torch.Tensor, torch.Tensor]:
        return self._model.encoder(x, cond)

    def decode(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self._model.decoder(z, cond)

    def condition(self, raw: RawConditions | Condition) -> Condition:
        return self._model.condition(raw)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self._model.data_info.image_shape)

    @property
    def latent_dim(self) -> int:
        return self._model.latent_dim

    @property
    def cond_dim(self) -> int:
        return self._model.conditioner.dim

    @property
    def data_info(self) -> DataInfo:
        return self._model.data_info

    @property
    def device(self) -> torch.device:
        return self._model.device


def attach_prior(prior: nn.Module, model: CVAE) -> None:
    """Call the prior's `attach(ModelView(model))`, where it has one (a prior that needs the
    model's encoder or decoder). The engine calls it once the model is built, before a
    state_dict is loaded or an optimizer built, so the prior may create parameters there."""
    attach = getattr(prior, "attach", None)
    if callable(attach):
        attach(ModelView(model))


def elbo(logits: torch.Tensor, kl: torch.Tensor, x: torch.Tensor, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The study's negative ELBO from decoder logits under a Bernoulli likelihood: BCE summed
    over pixels plus KL (`kl`, summed over the batch), averaged over the batch (nats per image)."""
    recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / x.shape[0]
    kl = kl / x.shape[0]
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}
