"""A Gaussian over dequantised 8-bit pixel values, with a fixed or learned scale per channel."""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.recipe import PositiveFloat

LEVELS = 256  # 8-bit values


class Gaussian(nn.Module):
    """N(mean, scale) per pixel value over dequantised 8-bit values, the decoder giving the mean.

    An 8-bit value v stands for the interval [v/256, (v+1)/256) of [0, 1] (its dequantisation
    bin); its probability is the Gaussian's mass there, the edge bins taking the tails, so the
    256 probabilities sum to 1 and bits per dimension compare with other 8-bit likelihoods.

    scale: the standard deviation, in units of the [0, 1] pixel range (the starting value when learned).
    learned: learn one scale per channel with the model; false keeps `scale` fixed."""

    bits = True

    def __init__(self, *, image_shape, scale: PositiveFloat = 0.1, learned: bool = True):
        super().__init__()
        log_scale = torch.full((image_shape[0],), math.log(scale))
        if learned:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def out_channels(self, channels: int) -> int:
        return channels

    def _scale(self, out: torch.Tensor) -> torch.Tensor:
        return self.log_scale.float().clamp(-9.0, 2.0).exp().view(1, -1, *[1] * (out.dim() - 2))

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        value = torch.round(x.float() * (LEVELS - 1))
        scale, mean = self._scale(out), out.float()
        lower, upper = (value / LEVELS - mean) / scale, ((value + 1) / LEVELS - mean) / scale
        lower = torch.where(value <= 0, torch.full_like(lower, -torch.inf), lower)
        upper = torch.where(value >= LEVELS - 1, torch.full_like(upper, torch.inf), upper)
        return _log_mass(lower, upper).flatten(1).sum(1)

    def sample(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(out.shape, generator=generator) if generator is not None else torch.randn_like(out.float())
        y = out.float() + eps.to(out.device) * self._scale(out)
        return (y * LEVELS).floor().clamp(0, LEVELS - 1) / (LEVELS - 1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out.clamp(0, 1)


def _log_mass(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """log (Phi(upper) - Phi(lower)) for standardised bounds, stable in both tails (an interval
    above the mean is taken mirrored, where the normal CDF is small and exact)."""
    mirror = lower > 0
    a = torch.where(mirror, -upper, lower)
    b = torch.where(mirror, -lower, upper)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp((log_a - log_b).clamp_max(-1e-12)))
