"""Model assembly: a CVAE from the parts a recipe names, all built through the registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .condition import Condition
from .data import DataInfo, RawConditions
from .errors import RecipeError
from .prior import check_prior_interface, kl_term, sample_latent
from .recipe import InjectionSpec, ModelConfig
from .registry import Registry


class InjectionStack(nn.ModuleList):
    """The injections placed at one stage, applied in recipe order: (h, cond) -> h'."""

    def __init__(self, modules, out_channels: int):
        super().__init__(modules)
        self.out_channels = out_channels

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        for inj in self:
            h = inj(h, cond)
        return h


@dataclass
class InjectionPlan:
    """The injections a recipe places in one network. The network calls `at(stage, channels)`
    at each point where it accepts one (0 = its input) and uses the returned stack."""

    specs: list[InjectionSpec]
    cond_dim: int
    registry: Registry
    net: str = "encoder"
    offered: list[int] = field(default_factory=list)

    def at(self, stage: int, channels: int) -> InjectionStack:
        self.offered.append(stage)
        modules = []
        for spec in (s for s in self.specs if s.at == stage):
            inj = self.registry.build("injection", spec.name, spec.params,
                                      cond_dim=self.cond_dim, channels=channels)
            channels = inj.out_channels
            modules.append(inj)
        return InjectionStack(modules, channels)

    def check_placed(self, network: str) -> None:
        """Every injection must land on a stage the network offered."""
        for spec in self.specs:
            if spec.at not in self.offered:
                where = (f"stages {sorted(set(self.offered))}" if self.offered
                         else "no injections")
                raise RecipeError(
                    f"Injection '{spec.name}' is placed at stage {spec.at} of the {self.net}, "
                    f"but {self.net} '{network}' takes {where}.")


class CVAE(nn.Module):
    """q(z | x, c) by the encoder, p(x | z, c) by the decoder, p(z | c) by the prior, c by the
    conditioner."""

    def __init__(self, conditioner: nn.Module, encoder: nn.Module, decoder: nn.Module,
                 latent_dim: int, data_info: DataInfo, prior: nn.Module | None = None):
        super().__init__()
        self.conditioner = conditioner
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior  # None: N(0, I)
        self.latent_dim = latent_dim
        self.data_info = data_info

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def condition(self, raw: RawConditions | Condition) -> Condition:
        """The conditioner's output for `raw`; a Condition (rows of a frozen conditioner's
        table, see resident.py) is taken as it is."""
        if isinstance(raw, torch.Tensor):
            raw = raw.to(self.device)
        cond = raw if isinstance(raw, Condition) else Condition.of(self.conditioner(raw))
        return Condition(cond.vector.to(self.device), cond.tokens.to(self.device),
                         None if cond.mask is None else cond.mask.to(self.device))

    def forward(self, x: torch.Tensor, raw: RawConditions) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction logits and KL(q || p) summed over the batch, for images `x` under
        conditions `raw`: the arguments of `elbo`. The KL is computed here, inside the module
        call, so that under DDP the prior's gradients are synchronised with the rest."""
        cond = self.condition(raw)
        mu, logvar = self.encoder(x, cond)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z, cond), kl_term((mu, logvar), z, self.prior, cond)

    def loss(self, x: torch.Tensor, raw: RawConditions, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Negative ELBO terms in nats per image (see `elbo`)."""
        return elbo(*self(x, raw), x, kl_weight)

    @torch.no_grad()
    def sample(self, raw: RawConditions, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """One image in [0, 1] per condition, from z drawn from the prior (see `sample_latent`
        for `temperature`)."""
        cond = self.condition(raw)
        z = sample_latent(self.prior, cond, self.latent_dim, generator, temperature)
        return torch.sigmoid(self.decoder(z, cond))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, raw: RawConditions) -> torch.Tensor:
        """Images decoded from the posterior mean."""
        cond = self.condition(raw)
        mu, _ = self.encoder(x.to(self.device), cond)
        return torch.sigmoid(self.decoder(mu, cond))


def elbo(logits: torch.Tensor, kl: torch.Tensor, x: torch.Tensor, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """BCE summed over pixels plus KL to the prior (`kl`, summed over the batch), averaged over
    the batch (nats per image)."""
    recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / x.shape[0]
    kl = kl / x.shape[0]
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


def build_model(config: ModelConfig, data_info: DataInfo, registry: Registry,
                conditioner: nn.Module | None = None) -> CVAE:
    """The CVAE a recipe's `model` section describes; `conditioner`, when given, is one
    already built from it (the memory guard builds the rest on the meta device around it)."""
    if conditioner is None:
        conditioner = registry.build("conditioner", config.conditioner.name,
                                     config.conditioner.params, data=data_info)
    cond_dim = conditioner.dim
    nets = {}
    for net in ("encoder", "decoder"):
        spec = getattr(config, net)
        plan = InjectionPlan([s for s in config.injections if s.net == net], cond_dim, registry, net)
        nets[net] = registry.build(net, spec.name, spec.params, image_shape=tuple(data_info.image_shape),
                                   cond_dim=cond_dim, latent_dim=config.latent_dim, injections=plan)
        plan.check_placed(spec.name)
    prior = None if config.prior is None else build_prior(config.prior.name, config.prior.params, cond_dim,
                                                          config.latent_dim, registry)
    return CVAE(conditioner, nets["encoder"], nets["decoder"], config.latent_dim, data_info, prior)


def build_prior(name: str, params: dict, cond_dim: int, latent_dim: int, registry: Registry) -> nn.Module:
    """The named prior component, checked to give `log_prob` and `sample`."""
    prior = registry.build("prior", name, params, cond_dim=cond_dim, latent_dim=latent_dim)
    check_prior_interface(prior, name)
    return prior
