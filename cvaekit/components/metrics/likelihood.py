"""Likelihood metrics: test negative ELBO and reconstruction error, per image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvaekit.evaluation.context import EvalContext


class NegativeELBO:
    """Test negative ELBO (BCE summed over pixels + KL), nats per image; lower is better."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        total, count = 0.0, 0
        for images, raw in ctx.batches():
            total += ctx.model.loss(images, raw)["loss"].item() * images.shape[0]
            count += images.shape[0]
        return {"nelbo": total / count}


class Reconstruction:
    """Test reconstruction error from the posterior mean: BCE (nats/image) and MSE (per pixel).

    BCE is summed over pixels like the training loss, so it compares with nelbo."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        bce, mse, count = 0.0, 0.0, 0
        for images, raw in ctx.batches():
            cond = ctx.model.condition(raw)
            mu, _ = ctx.model.encoder(images, cond)
            logits = ctx.model.decoder(mu, cond).float()
            bce += F.binary_cross_entropy_with_logits(logits, images, reduction="sum").item()
            mse += (torch.sigmoid(logits) - images).pow(2).mean(dim=(1, 2, 3)).sum().item()
            count += images.shape[0]
        return {"recon_bce": bce / count, "recon_mse": mse / count}
