"""`vamp`: the VampPrior (Tomczak and Welling, 2018), conditional: a mixture of the model's own
posteriors q(z | u_k, c) at K learned pseudo-inputs u_k, weighted by the condition.

The aggregate posterior is the prior that fits a VAE's codes best; the VampPrior
approximates it with the encoder itself at K learned images, so the prior and the posterior
share what the encoder knows. It reaches the encoder through `attach(model)`.
"""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.prior import gaussian_log_prob, mixture_draw
from cvaekit.recipe import PositiveInt


class VampPrior(nn.Module):
    """A mixture of the encoder's posteriors q(z | u_k, c) at `pseudo_inputs` learned pseudo-images u_k, weighted by the condition (the VampPrior).

    pseudo_inputs: the number of learned pseudo-images (K), each a component of the mixture.
    conditional_weights: the components' weights depend on the condition (false: equal weights)."""

    def __init__(self, *, cond_dim: int, latent_dim: int, pseudo_inputs: PositiveInt = 50,
                 conditional_weights: bool = True):
        super().__init__()
        self.k, self.latent_dim = pseudo_inputs, latent_dim
        self.weights = nn.Linear(cond_dim, pseudo_inputs) if conditional_weights else None
        if self.weights is not None:
            nn.init.zeros_(self.weights.weight)
            nn.init.zeros_(self.weights.bias)
        self.model = None

    def attach(self, model) -> None:
        """Keep the model's view (its encoder) and make the pseudo-images, of the model's image shape."""
        self.model = model
        self.pseudo_logits = nn.Parameter(torch.randn(self.k, *model.image_shape) * 0.5)

    def parts(self, cond: Condition) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weight logits [B, K], means [B, K, D] and standard deviations [B, K, D]. The encoder runs
        once per distinct condition in the batch (labels repeat; an unconditional model has one)."""
        if self.model is None:
            raise RuntimeError("The VampPrior needs the model's encoder: the engine calls attach(model) first.")
        unique, inverse = torch.unique(cond.vector, dim=0, return_inverse=True)
        first = torch.zeros(len(unique), dtype=torch.long, device=cond.vector.device)
        first.scatter_(0, inverse, torch.arange(len(inverse), device=cond.vector.device))
        u = torch.sigmoid(self.pseudo_logits).repeat(len(unique), 1, 1, 1)
        rows = cond.index(first.repeat_interleave(self.k))
        mu, logvar = self.model.posterior(u.to(cond.vector.device), rows)
        mu = mu.float().view(len(unique), self.k, -1)[inverse]
        std = (0.5 * logvar.float()).exp().view(len(unique), self.k, -1)[inverse]
        logits = self.weights(cond.vector).float() if self.weights is not None else \
            torch.zeros(cond.vector.shape[0], self.k, device=mu.device)
        return logits, mu, std

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        logits, mu, std = self.parts(cond)
        log_n = gaussian_log_prob(z[:, None].float(), mu, 2 * std.log())  # each component's, [B, K]
        return torch.logsumexp(torch.log_softmax(logits, -1) + log_n, dim=-1)

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """A component by its (tempered) weight, then its mean + temperature * its spread * eps;
        at 0, the mixture's mode."""
        logits, mu, std = self.parts(cond)
        return mixture_draw(logits, mu, std, generator, temperature)
