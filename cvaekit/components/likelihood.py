"""Likelihood metric: test negative ELBO in nats per image."""

from __future__ import annotations

from ..evaluation import EvalContext


class NegativeELBO:
    """Test negative ELBO (BCE summed over pixels + KL), nats per image; lower is better."""

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        total, count = 0.0, 0
        for images, raw in ctx.batches():
            total += ctx.model.loss(images, raw)["loss"].item() * images.shape[0]
            count += images.shape[0]
        return {"nelbo": total / count}
