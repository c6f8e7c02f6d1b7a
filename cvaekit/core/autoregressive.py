"""An autoregressive prior over a latent map's positions (PixelCNN's masked convolutions, van den
Oord et al. 2016, applied to z as in PixelVAE, Gulrajani et al. 2017).

A map group's Gaussian prior draws every position's noise apart given the map above it, so it
cannot agree on "one small shape, somewhere in this cell": the posterior marks a shape at one
position, and independent draws mark none or several. Here each position's prior also reads
the z already drawn at the positions before it (raster order), so a shape drawn at one position
is known at the next. Training reads every position at once (the posterior's z, teacher
forced); sampling draws the positions one by one. With `by_channel`, a position's channels are
drawn in turn as well (PixelCNN's channel masks), so its prior is no longer a Gaussian of
independent channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedConv2d(nn.Conv2d):
    """A convolution whose output at a position sees only the positions before it in raster
    order, and the position itself with `include_centre` (PixelCNN's masks B and A). Given each
    input and output channel's group (`groups`: two tensors of group numbers), the position
    itself is seen group by group instead: an output channel sees the input groups before its
    own, and its own with `include_centre`, so a position's channels can be drawn in turn."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, include_centre: bool,
                 groups: tuple[torch.Tensor, torch.Tensor] | None = None):
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        mask = torch.ones(out_channels, in_channels, kernel, kernel)
        centre = kernel // 2
        mask[:, :, centre, centre:] = 0
        mask[:, :, centre + 1:] = 0
        if groups is None:
            mask[:, :, centre, centre] = float(include_centre)
        else:
            before, own = groups[1][:, None] > groups[0][None, :], groups[1][:, None] == groups[0][None, :]
            mask[:, :, centre, centre] = (before | (own & include_centre)).float()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def channel_groups(count: int, groups: int) -> torch.Tensor:
    """Which of `groups` latent channels each of `count` features belongs to, in contiguous blocks."""
    return torch.arange(count) * groups // count


class AutoregressivePrior(nn.Module):
    """Corrections (mean, log-variance) to a map group's prior at each position, from the z at
    the positions before it (and with `by_channel` the channels before its own at that
    position) and the map above; zero at the start, so training begins from the group's plain
    prior."""

    def __init__(self, width: int, channels: int, kernel: int = 5, layers: int = 3, by_channel: bool = False):
        super().__init__()
        self.by_channel = by_channel
        z_groups, hidden, out = torch.arange(channels), channel_groups(width, channels), torch.arange(2 * channels) % channels

        def pick(inputs: torch.Tensor, outputs: torch.Tensor):
            return (inputs, outputs) if by_channel else None

        self.first = MaskedConv2d(channels, width, kernel, include_centre=False, groups=pick(z_groups, hidden))
        self.context = nn.Conv2d(width, width, 1)
        self.body = nn.ModuleList(MaskedConv2d(width, width, kernel, include_centre=True, groups=pick(hidden, hidden))
                                  for _ in range(layers - 1))
        self.out = MaskedConv2d(width, 2 * channels, 1, include_centre=True, groups=pick(hidden, out))
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
        for here in self._steps(z.shape[1:]):
            mu, logvar = self.corrected(z, h, prior, max_logvar)
            z = torch.where(here.to(z.device), mu + eps * torch.exp(0.5 * logvar), z)
        return z

    def _steps(self, shape: torch.Size):
        """Which (channel, row, column) entries each sampling step draws: the positions in raster
        order, and with `by_channel` each position's channels in turn."""
        channels, height, width = shape
        for position in range(height * width):
            for channel in range(channels) if self.by_channel else [slice(None)]:
                here = torch.zeros(channels, height * width, dtype=torch.bool)
                here[channel, position] = True
                yield here.view(channels, height, width)
