"""Test negative log-likelihood by importance sampling (Burda et al. 2016): the figure the field
reports for a VAE, in nats per image and, for 8-bit likelihoods, bits per dimension."""

from __future__ import annotations

import math

import torch

from cvaekit.core.likelihood import bits_per_dim
from cvaekit.core.objectives import log_weights
from cvaekit.evaluation.context import EvalContext
from cvaekit.recipe import PositiveInt


class ImportanceSampledNLL:
    """Test -log p(x | c) by importance sampling from q(z | x, c), with its standard error.

    log p(x | c) ~ log (1/k) sum_j p(x | z_j, c) p(z_j | c) / q(z_j | x, c), z_j ~ q(z | x, c),
    summed in float64 (log-mean-exp). It is at most the NELBO on average, and tends to the true
    value as `samples` grows. Works with every prior and likelihood.

    samples: importance samples per test image (k).
    chunk: samples decoded at once per image (memory, not the result)."""

    def __init__(self, samples: PositiveInt = 100, chunk: PositiveInt = 25):
        self.samples, self.chunk = samples, chunk

    def per_image(self, ctx: EvalContext) -> torch.Tensor:
        """-log p(x | c) of each test image, in nats."""
        values = []
        for images, raw in ctx.batches():
            cond = ctx.model.condition(raw)
            weights = [log_weights(ctx.model, images, cond, min(self.chunk, self.samples - start))["weights"].double()
                       for start in range(0, self.samples, self.chunk)]
            values.append(-(torch.logsumexp(torch.cat(weights), 0) - math.log(self.samples)).cpu())
        return torch.cat(values)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        nll = self.per_image(ctx)
        se = nll.std().item() / math.sqrt(len(nll)) if len(nll) > 1 else float("nan")
        out = {"nll": nll.mean().item(), "nll_se": se}
        if ctx.model.likelihood.bits:
            dims = math.prod(ctx.model.data_info.image_shape)
            out.update(nll_bpd=bits_per_dim(out["nll"], dims), nll_bpd_se=bits_per_dim(se, dims))
        return out
