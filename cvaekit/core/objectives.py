"""What training minimises: the negative ELBO (with a KL weight and free bits) or the IWAE
bound, and the importance weights that also estimate log p(x | c) for the `nll` metric.

All terms are in nats per image. `recon` is -log p(x | z, c), `kl` the true KL(q || p) (or its
Monte Carlo estimate): the weight and free bits change only `loss`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch



@dataclass(frozen=True)
class Objective:
    """The loss of one step. `kind` "elbo" or "iwae" (with `k` samples, Burda et al. 2016);
    `kl_weight` scales the KL (a schedule sets it per step); `free_bits` is the KL, in nats per
    latent dimension averaged over the batch, below which a dimension costs nothing (Kingma et
    al. 2016); `balance` weighs each latent group's KL by its share (`balanced`); `cond_dropout`
    is the share of the batch's images trained with the empty condition (classifier-free
    guidance, Ho and Salimans 2022: the model learns to draw without text too)."""

    kind: str = "elbo"
    k: int = 1
    kl_weight: float = 1.0
    free_bits: float = 0.0
    balance: bool = False
    cond_dropout: float = 0.0

    @classmethod
    def from_train(cls, train, kl_weight: float) -> "Objective":
        """The recipe's `train` section's objective at this step's KL weight (the one place that
        reads those keys, for the loop and for benchmarks alike)."""
        return cls(train.objective, train.iwae_k, kl_weight, train.free_bits, train.kl_balance, train.cond_dropout)


def elbo_terms(model, x: torch.Tensor, cond, objective: Objective) -> dict[str, torch.Tensor]:
    """The negative ELBO's terms from one posterior sample per image. The KL is the groups' sum (a
    model of several groups also reports each, from the top, in `kl_groups`); free bits hold each
    free-bits unit's batch-mean KL at least at free_bits per latent dimension of the unit (a
    dimension of a single latent vector, a whole group of a hierarchy: `cvaekit.core.latents`)."""
    drawn = model.posterior(x, cond)
    recon = -model.likelihood.log_prob(x, drawn.out).sum() / x.shape[0]
    per_group = torch.stack([g.kl_units.sum() / x.shape[0] for g in drawn.groups])  # [G], nats per image
    kl = per_group.sum()
    charged = per_group
    if objective.free_bits > 0:
        charged = torch.stack([g.kl_units.mean(0).clamp_min(objective.free_bits * g.unit_dims).sum()
                               for g in drawn.groups])
    if objective.balance:
        charged = balanced(charged)
    terms = {"loss": recon + objective.kl_weight * charged.sum(), "recon": recon, "kl": kl}
    if len(drawn.groups) > 1:
        terms["kl_groups"] = per_group.detach()
    return terms


def balanced(group_kl: torch.Tensor) -> torch.Tensor:
    """Each group's KL [G] times its share of the KL over the groups' mean share (NVAE's KL
    balancing, every group weighed alike; the coefficients carry no gradient): a group holding
    most of the information pays most for each nat, so the others are used too."""
    share = group_kl.detach().clamp_min(0) + 0.01
    return group_kl * share / share.mean()


def log_weights(model, x: torch.Tensor, cond, k: int, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """log p(x | z_j, c), log p(z_j | c) and log q(z_j | x, c) for `k` draws z_j ~ q, each [k, B]
    (summed over the latent groups); `weights` = log p(x | z) + kl_weight * (log p(z) - log q(z))
    (the importance weights at 1)."""
    drawn = model.importance(x, cond, k)
    log_px = model.likelihood.log_prob(x.repeat(k, *[1] * (x.dim() - 1)), drawn.out).view(k, -1)
    log_pz = torch.stack([g.log_p for g in drawn.groups]).sum(0).view(k, -1)
    log_qz = torch.stack([g.log_q for g in drawn.groups]).sum(0).view(k, -1)
    return {"log_px": log_px, "log_pz": log_pz, "log_qz": log_qz, "weights": log_px + kl_weight * (log_pz - log_qz)}


def iwae_terms(model, x: torch.Tensor, cond, objective: Objective) -> dict[str, torch.Tensor]:
    """The negative IWAE bound, -log (1/k) sum_j w_j, per image; with k = 1 the ELBO with a
    Monte Carlo KL. `recon` and `kl` are the draws' averages."""
    parts = log_weights(model, x, cond, objective.k, objective.kl_weight)
    bound = torch.logsumexp(parts["weights"], 0) - math.log(objective.k)
    return {"loss": -bound.mean(), "recon": -parts["log_px"].mean(),
            "kl": (parts["log_qz"] - parts["log_pz"]).mean()}


OBJECTIVES = {"elbo": elbo_terms, "iwae": iwae_terms}
