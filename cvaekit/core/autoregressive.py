"""An autoregressive prior over a latent map's positions (PixelCNN's masked convolutions, van den
Oord et al. 2016, applied to z as in PixelVAE, Gulrajani et al. 2017).

A map group's Gaussian prior draws every position's noise apart given the map above it, so it
cannot agree on "one small shape, somewhere in this cell": the posterior marks a shape at one
position, and independent draws mark none or several. Here each position's prior also reads
the z already drawn at the positions before it (raster order), so a shape drawn at one position
is known at the next. Training reads every position at once (the posterior's z, teacher
forced); sampling draws the positions one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedConv2d(nn.Conv2d):
    """A convolution whose output at a position sees only the positions before it in raster
    order, and the position itself with `include_centre` (PixelCNN's masks B and A)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, include_centre: bool):
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        mask = torch.ones(kernel, kernel)
        centre = kernel // 2
        mask[centre, centre + int(include_centre):] = 0
        mask[centre + 1:] = 0
        self.register_buffer("mask", mask[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class AutoregressivePrior(nn.Module):
    """Corrections (mean, log-variance) to a map group's prior at each position, from the z at
    the positions before it and the map above; zero at the start, so training begins from the
    group's plain prior."""

    def __init__(self, width: int, channels: int, kernel: int = 5, layers: int = 3):
        super().__init__()
        self.first = MaskedConv2d(channels, width, kernel, include_centre=False)
        self.context = nn.Conv2d(width, width, 1)
        self.body = nn.ModuleList(MaskedConv2d(width, width, kernel, include_centre=True)
                                  for _ in range(layers - 1))
        self.out = nn.Conv2d(width, 2 * channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.first(z.to(h.dtype)) + self.context(h)
        for layer in self.body:
            a = a + layer(F.silu(a))
        shift, log_scale = self.out(F.silu(a)).float().chunk(2, dim=1)
        return shift, log_scale

    def corrected(self, z: torch.Tensor, h: torch.Tensor, prior: tuple[torch.Tensor, torch.Tensor],
                  max_logvar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The group's prior (mean, log-variance) at each position given the z before it: the one
        place training and sampling read it from."""
        shift, log_scale = self(z, h)
        return prior[0] + shift, (prior[1] + log_scale).clamp(-10, max_logvar)

    def sample(self, h: torch.Tensor, prior: tuple[torch.Tensor, torch.Tensor], eps: torch.Tensor,
               max_logvar: float) -> torch.Tensor:
        """z drawn position by position: each from the prior corrected by the positions drawn
        before it, with the noise `eps` (drawn up front, so a seed gives the same z)."""
        z = torch.zeros_like(prior[0])
        positions = torch.eye(z.shape[-2] * z.shape[-1], dtype=torch.bool, device=z.device)
        for here in positions.view(-1, *z.shape[-2:]):  # raster order
            mu, logvar = self.corrected(z, h, prior, max_logvar)
            z = torch.where(here, mu + eps * torch.exp(0.5 * logvar), z)
        return z
