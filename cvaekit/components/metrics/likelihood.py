"""Likelihood metrics: test negative ELBO and reconstruction error, per image, under the
model's own likelihood (bits per dimension too for an 8-bit one)."""

from __future__ import annotations

import math

import torch

from cvaekit.core.likelihood import bits_per_dim
from cvaekit.evaluation.context import EvalContext


class NegativeELBO:
    """Test negative ELBO (-log p(x | z) summed over pixels + KL), nats per image; lower is better."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        total, count, groups = 0.0, 0, []
        for images, raw in ctx.batches():
            terms = ctx.model.loss(images, raw)
            total += terms["loss"].item() * images.shape[0]
            if "kl_groups" in terms:  # a hierarchical model: the KL of each group, from the top
                groups.append(terms["kl_groups"].double().cpu() * images.shape[0])
            count += images.shape[0]
        out = {"nelbo": total / count}
        if groups:
            out.update({f"kl_group{i}": value / count for i, value in enumerate(torch.stack(groups).sum(0).tolist())})
        if ctx.model.likelihood.bits:
            out["nelbo_bpd"] = bits_per_dim(out["nelbo"], math.prod(ctx.model.data_info.image_shape))
        return out


class Reconstruction:
    """Test reconstruction error from the posterior mean: -log p(x | z = mu) (nats/image; BCE
    under the Bernoulli likelihood, so it compares with nelbo) and MSE (per pixel)."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        nll, mse, count = 0.0, 0.0, 0
        likelihood = ctx.model.likelihood
        for images, raw in ctx.batches():
            cond = ctx.model.condition(raw)
            out = ctx.model.decode_mean(images, cond).float()
            nll -= likelihood.log_prob(images, out).sum().item()
            mse += (likelihood.mean(out) - images).pow(2).mean(dim=(1, 2, 3)).sum().item()
            count += images.shape[0]
        key = "recon_bce" if not likelihood.bits else "recon_nll"
        return {key: nll / count, "recon_mse": mse / count}
