"""What training minimises: the negative ELBO (with a KL weight and free bits) or the IWAE
bound, and the importance weights that also estimate log p(x | c) for the `nll` metric.

All terms are in nats per image. `recon` is -log p(x | z, c), `kl` the true KL(q || p) (or its
Monte Carlo estimate): the weight and free bits change only `loss`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cvaekit.core.hierarchy import is_top_down, posterior_pass
from cvaekit.core.prior import gaussian_log_prob, kl_per_dim, kl_term, prior_log_prob


@dataclass(frozen=True)
class Objective:
    """The loss of one step. `kind` "elbo" or "iwae" (with `k` samples, Burda et al. 2016);
    `kl_weight` scales the KL (a schedule sets it per step); `free_bits` is the KL, in nats per
    latent dimension averaged over the batch, below which a dimension costs nothing (Kingma et
    al. 2016)."""

    kind: str = "elbo"
    k: int = 1
    kl_weight: float = 1.0
    free_bits: float = 0.0


def elbo_terms(model, x: torch.Tensor, cond, objective: Objective) -> dict[str, torch.Tensor]:
    """The negative ELBO's terms from one posterior sample per image."""
    if is_top_down(model):
        return _hierarchical_elbo_terms(model, x, cond, objective)
    mu, logvar = model.encoder(x, cond)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = -model.likelihood.log_prob(x, model.decoder(z, cond)).sum() / x.shape[0]
    per_dim = kl_per_dim((mu, logvar), model.prior, cond) if objective.free_bits > 0 else None
    kl = (per_dim.sum() if per_dim is not None else kl_term((mu, logvar), z, model.prior, cond)) / x.shape[0]
    charged = kl
    if per_dim is not None:  # each dimension's batch mean, held at least at the free bits
        charged = per_dim.mean(0).clamp_min(objective.free_bits).sum()
    return {"loss": recon + objective.kl_weight * charged, "recon": recon, "kl": kl}


def _hierarchical_elbo_terms(model, x: torch.Tensor, cond, objective: Objective) -> dict[str, torch.Tensor]:
    """The negative ELBO of a top-down model: the KL is the groups' sum (each reported in
    `kl_groups`); free bits hold each group's batch-mean KL at least at free_bits per latent
    dimension of the group."""
    out, groups = posterior_pass(model, x, cond)
    recon = -model.likelihood.log_prob(x, out).sum() / x.shape[0]
    per_group = torch.stack([g.kl for g in groups]).mean(1)  # [G], nats per image
    charged = per_group
    if objective.free_bits > 0:
        floors = torch.tensor([objective.free_bits * g.z[0].numel() for g in groups], device=per_group.device)
        charged = torch.maximum(per_group, floors)
    kl = per_group.sum()
    return {"loss": recon + objective.kl_weight * charged.sum(), "recon": recon, "kl": kl,
            "kl_groups": per_group.detach()}


def log_weights(model, x: torch.Tensor, cond, k: int, kl_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """log p(x | z_j, c), log p(z_j | c) and log q(z_j | x, c) for `k` draws z_j ~ q, each [k, B];
    `weights` = log p(x | z) + kl_weight * (log p(z) - log q(z)) (the importance weights at 1)."""
    if is_top_down(model):
        return _hierarchical_log_weights(model, x, cond, k, kl_weight)
    mu, logvar = model.encoder(x, cond)
    mu, logvar = mu.float(), logvar.float()
    z = mu + torch.randn((k, *mu.shape), device=mu.device) * torch.exp(0.5 * logvar)
    flat_z = z.flatten(0, 1)
    repeat = cond.index(torch.arange(x.shape[0], device=x.device).repeat(k))
    out = model.decoder(flat_z.to(mu.dtype), repeat)
    log_px = model.likelihood.log_prob(x.repeat(k, *[1] * (x.dim() - 1)), out).view(k, -1)
    log_pz = prior_log_prob(model.prior, flat_z, repeat).view(k, -1)
    log_qz = gaussian_log_prob(z, mu, logvar)
    return {"log_px": log_px, "log_pz": log_pz, "log_qz": log_qz,
            "weights": log_px + kl_weight * (log_pz - log_qz)}


def _hierarchical_log_weights(model, x: torch.Tensor, cond, k: int, kl_weight: float) -> dict[str, torch.Tensor]:
    """As `log_weights`, for a top-down model: every group drawn from its posterior, k times."""
    repeat = cond.index(torch.arange(x.shape[0], device=x.device).repeat(k))
    xs = x.repeat(k, *[1] * (x.dim() - 1))
    out, groups = posterior_pass(model, xs, repeat)
    log_px = model.likelihood.log_prob(xs, out).view(k, -1)
    log_pz = torch.stack([g.log_p for g in groups]).sum(0).view(k, -1)
    log_qz = torch.stack([g.log_q for g in groups]).sum(0).view(k, -1)
    return {"log_px": log_px, "log_pz": log_pz, "log_qz": log_qz, "weights": log_px + kl_weight * (log_pz - log_qz)}


def iwae_terms(model, x: torch.Tensor, cond, objective: Objective) -> dict[str, torch.Tensor]:
    """The negative IWAE bound, -log (1/k) sum_j w_j, per image; with k = 1 the ELBO with a
    Monte Carlo KL. `recon` and `kl` are the draws' averages."""
    parts = log_weights(model, x, cond, objective.k, objective.kl_weight)
    bound = torch.logsumexp(parts["weights"], 0) - math.log(objective.k)
    return {"loss": -bound.mean(), "recon": -parts["log_px"].mean(),
            "kl": (parts["log_qz"] - parts["log_pz"]).mean()}


OBJECTIVES = {"elbo": elbo_terms, "iwae": iwae_terms}
