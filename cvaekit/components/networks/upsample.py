"""A conv decoder without checkerboards: resize, then convolve (Odena et al., 2016).

A stride-2 transposed convolution with kernel 3 overlaps its kernel unevenly (pixels where
two windows meet get more), which leaves a period-2 pattern in every picture. Here each stage
doubles the grid by nearest-neighbour resizing to the encoder's size at that stage, then
convolves with stride 1 (edges padded by repeating them, so the border adds no pattern of its
own), so every output pixel sees the same number of inputs; residual
blocks after each resize add depth at no cost in resolution.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.components.networks.conv import (
    STUDY_CHANNELS,
    DeconvDecoder,
    build_grid_decoder,
)
from cvaekit.recipe import AtLeast, NonNegativeFloat, PositiveInt


class Residual(nn.Module):
    """h + conv(act(conv(act(h)))), 3x3 convs at one width."""

    def __init__(self, width: int, slope: float):
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(slope), nn.Conv2d(width, width, 3, padding=1, padding_mode="replicate"),
                                  nn.LeakyReLU(slope), nn.Conv2d(width, width, 3, padding=1, padding_mode="replicate"))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class UpStage(nn.Module):
    """Resize to `size` (nearest), a 3x3 conv to `width`, then `blocks` residual blocks."""

    def __init__(self, in_ch: int, width: int, size: tuple[int, int], blocks: int, slope: float, last: bool):
        super().__init__()
        self.size = size
        layers = [nn.Conv2d(in_ch, width, 3, padding=1, padding_mode="replicate")]
        if not last:
            layers += [Residual(width, slope) for _ in range(blocks)] + [nn.LeakyReLU(slope)]
        self.body = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(F.interpolate(h, size=self.size, mode="nearest"))


class UpsampleDecoder(nn.Module):
    """[z, c] -> linear layers to a small grid -> resize-then-conv stages with residual blocks -> the image's parameters.

    The grid and stages mirror the `conv` encoder's; injections are offered at stage 0 and after
    every stage but the last, as in `deconv`.

    channels: the encoder's stage widths, input side first; the decoder goes through them in reverse.
    hidden: units of the first linear layer, between [z, c] and the grid.
    final_side: the grid's longer side at most, in pixels, as for the encoder.
    blocks: residual blocks after each resize but the last.
    slope: the LeakyReLU's slope for negative inputs."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections,
                 channels: list[PositiveInt] = STUDY_CHANNELS, hidden: PositiveInt = 1024,
                 final_side: PositiveInt = 7, blocks: Annotated[int, AtLeast(0)] = 1,
                 slope: NonNegativeFloat = 0.2):
        super().__init__()

        def stage(in_ch: int, width: int, source: tuple[int, int], target: tuple[int, int], last: bool) -> nn.Module:
            return UpStage(in_ch, width, target, blocks, slope, last)

        build_grid_decoder(self, "upsample", stage, image_shape, cond_dim, latent_dim, injections, channels, hidden,
                           final_side, slope)

    forward = DeconvDecoder.forward  # the same path through grid, stages and injections
