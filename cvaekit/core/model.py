"""The CVAE: q(z | x, c), p(x | z, c) and p(z | c) around a conditioner, and its objective.

Torch only: the parts are built elsewhere (`cvaekit.assembly`) and handed in."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo, RawConditions
from cvaekit.core.guidance import check_guidance, guided_output
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.core.latents import LatentPass, group_draws, latent_path
from cvaekit.core.likelihood import Bernoulli
from cvaekit.core.objectives import OBJECTIVES, Objective


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
        prior's and the likelihood's gradients are synchronised with the rest. In training, a
        share `objective.cond_dropout` of the rows gets the empty condition (guidance)."""
        cond = self.condition(raw)
        if self.training and objective.cond_dropout > 0:
            cond = cond.dropped(torch.rand(x.shape[0], device=x.device) < objective.cond_dropout)
        return OBJECTIVES[objective.kind](self, x, cond, objective)

    def loss(self, x: torch.Tensor, raw: RawConditions, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Negative ELBO terms in nats per image."""
        return self(x, raw, Objective(kl_weight=kl_weight))

    # ------------------------------------------------------------ the latent path (core/latents.py)

    @property
    def group_shapes(self) -> list[tuple[int, ...]]:
        """Each latent group's z shape, from the top: [(latent_dim,)] for a single latent vector."""
        return latent_path(self.decoder).group_shapes(self)

    @property
    def group_count(self) -> int:
        return len(self.group_shapes)

    @property
    def prior_dim(self) -> int:
        """The size of the top group's z, flattened: what `model.prior` (a fitted prior) is over."""
        return math.prod(self.group_shapes[0])

    def posterior(self, x: torch.Tensor, cond: Condition, mean: bool = False) -> LatentPass:
        """Every group drawn from q(z | x, c) (its mean with `mean`), with its KL and the output."""
        return latent_path(self.decoder).posterior(self, x, cond, mean)

    def importance(self, x: torch.Tensor, cond: Condition, k: int) -> LatentPass:
        """`k` posterior draws per image ([k * B] rows, draw-major) with log q(z) and log p(z)."""
        return latent_path(self.decoder).importance(self, x, cond, k)

    def prior_sample(self, cond: Condition, draws: list[GroupDraw]) -> LatentPass:
        """Every group drawn from its prior top-down, one `GroupDraw` per group saying how."""
        return latent_path(self.decoder).prior_sample(self, cond, draws)

    def decode_top(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The decoder's output for top-group codes `z` [B, prior_dim] (a hierarchy's lower groups
        at their prior means): where a caller chooses z itself instead of the prior drawing it."""
        lower = [GroupDraw(temperature=0.0)] * (self.group_count - 1)
        return self.prior_sample(cond, [GroupDraw(z=z), *lower]).out

    def draws(self, temperature=1.0, generator: torch.Generator | None = None, fix_top: int = 0) -> list[GroupDraw]:
        """A `GroupDraw` per group (`cvaekit.core.latents.group_draws`), checked against this model."""
        return group_draws(self.group_count, temperature, generator, fix_top)

    @torch.no_grad()
    def sample(self, raw: RawConditions, generator: torch.Generator | None = None,
               temperature: float | list[float] = 1.0, fix_top: int = 0, guidance: float = 1.0) -> torch.Tensor:
        """One image in [0, 1] per condition (the likelihood's mean) from z drawn from the prior
        (see `sample_latent` for `temperature`: one for all groups, or one per group from the
        top); the top `fix_top` groups are drawn once and shared by every row; `guidance` above
        1 weighs the text up (`cvaekit.core.guidance`)."""
        cond, scale = self.condition(raw), check_guidance(guidance)
        return self.likelihood.mean(guided_output(self, cond, self.draws(temperature, generator, fix_top), scale))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, raw: RawConditions) -> torch.Tensor:
        """Images decoded from the posterior mean."""
        return self.likelihood.mean(self.decode_mean(x.to(self.device), self.condition(raw)))

    def decode_mean(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The decoder's output with z at the posterior's mean (every group's, top-down)."""
        return self.posterior(x, cond, mean=True).out


class ModelView:
    """What a prior's `attach(model)` receives: the model it belongs to, seen from outside its
    module tree (a plain object, so keeping it in the prior adds no weights to the prior's
    state_dict and no loop to the model's). A VampPrior computes q(z | u_k, c) at its
    pseudo-inputs u_k with `posterior`.

    posterior(x, cond) -> (mu, logvar): the encoder's q(z | x, c) for images x [B, C, H, W]
        in [0, 1] and a `Condition` cond, each [B, latent_dim] (with gradients; a hierarchy's
        top group, flattened, `latent_dim` its size);
    decode(z, cond) -> logits [B, C, H, W]: the decoder's p(x | z, c), before the sigmoid
        (a hierarchy's lower groups at their means);
    condition(raw) -> Condition: the conditioner's output for raw conditions;
    image_shape, latent_dim, cond_dim, data_info, device.
    """

    def __init__(self, model: CVAE):
        self._model = model

    def posterior(self, x: torch.Tensor, cond: Condition) -> tuple[torch.Tensor, torch.Tensor]:
        top = self._model.posterior(x, cond, mean=True).groups[0]
        return top.mu.flatten(1), top.logvar.flatten(1)

    def decode(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self._model.decode_top(z, cond)

    def condition(self, raw: RawConditions | Condition) -> Condition:
        return self._model.condition(raw)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self._model.data_info.image_shape)

    @property
    def latent_dim(self) -> int:
        return self._model.prior_dim

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
