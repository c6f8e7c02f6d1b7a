"""The study's long-text networks: stride-2 convs down to a small grid, transposed convs back.

The number of stages follows the image size: each stage halves the side until it is at
most `final_side` (224 -> 112 -> 56 -> 28 -> 14 -> 7 is the study's five; 28 -> 14 -> 7 is
two; 32 -> 16 -> 8 -> 4 is three). Stage k uses the k-th entry of `channels`. Both networks
offer injections at stage 0 and after every stage (the decoder: after each transposed conv
but the last, which produces the image).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import RecipeError
from cvaekit.recipe import NonNegativeFloat, PositiveInt

STUDY_CHANNELS = [32, 64, 128, 256, 512]


def stage_sizes(height: int, width: int, final_side: int = 7) -> list[tuple[int, int]]:
    """(H, W) at the input and after each stride-2 conv (kernel 3, padding 1: ceil(n / 2))."""
    if final_side < 1:
        raise RecipeError(f"'final_side' must be at least 1, got {final_side}.")
    sizes = [(height, width)]
    while max(sizes[-1]) > final_side:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def stage_widths(channels: list[int], stages: int, image_shape, net: str) -> list[int]:
    if len(channels) < stages:
        raise RecipeError(
            f"The {net} needs {stages} conv stages for {image_shape[1]}x{image_shape[2]} images "
            f"but 'channels' has only {len(channels)} widths ({channels}). Give at least {stages}, "
            f"e.g. {STUDY_CHANNELS[:stages] if stages <= 5 else STUDY_CHANNELS + [512] * (stages - 5)}, "
            f"or raise 'final_side'.")
    if any(c < 1 for c in channels):
        raise RecipeError(f"'channels' must be positive widths, got {channels}.")
    return list(channels[:stages])


class ConvEncoder(nn.Module):
    """Stride-2 convs (kernel 3, LeakyReLU) to a small grid, flatten, linear mu and logvar.

    channels: widths of the stages, input side first (one per stage; extra ones go unused).
    final_side: stages halve the image until its longer side is at most this many pixels.
    slope: the LeakyReLU's slope for negative inputs."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections,
                 channels: list[PositiveInt] = STUDY_CHANNELS, final_side: PositiveInt = 7,
                 slope: NonNegativeFloat = 0.2):  # noqa: B006
        super().__init__()
        c, h, w = image_shape
        sizes = stage_sizes(h, w, final_side)
        widths = stage_widths(channels, len(sizes) - 1, image_shape, "encoder 'conv'")
        self.injections = nn.ModuleList([injections.at(0, c)])
        self.stages = nn.ModuleList()
        in_ch = self.injections[0].out_channels
        for k, width in enumerate(widths, start=1):
            self.stages.append(nn.Sequential(nn.Conv2d(in_ch, width, 3, stride=2, padding=1),
                                             nn.LeakyReLU(slope)))
            self.injections.append(injections.at(k, width))
            in_ch = self.injections[-1].out_channels
        flat = in_ch * math.prod(sizes[-1])
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)

    def forward(self, x: torch.Tensor, cond: Condition):
        h = self.injections[0](x, cond)
        for stage, inject in zip(self.stages, self.injections[1:]):
            h = inject(stage(h), cond)
        h = h.flatten(1)
        return self.mu(h), self.logvar(h)


def build_grid_decoder(net: nn.Module, name: str, stage, image_shape, cond_dim: int, latent_dim: int, injections,
                       channels: list[int], hidden: int, final_side: int, slope: float) -> None:
    """What the grid decoders share: linear layers from [z, c] to the encoder's last grid, then
    one `stage(in_channels, width, source_size, target_size, last)` per encoder stage in reverse,
    with injections offered at the grid and after each stage but the last."""
    c, h, w = image_shape
    sizes = stage_sizes(h, w, final_side)
    widths = stage_widths(channels, len(sizes) - 1, image_shape, f"decoder '{name}'")
    if not widths:
        raise RecipeError(f"Decoder '{name}' needs at least one stage: the image ({h}x{w}) is "
                          f"already within 'final_side' {final_side}. Lower 'final_side'.")
    net.grid = (widths[-1], *sizes[-1])
    net.project = nn.Sequential(nn.Linear(latent_dim + cond_dim, hidden), nn.LeakyReLU(slope),
                                nn.Linear(hidden, math.prod(net.grid)), nn.LeakyReLU(slope))
    net.injections = nn.ModuleList([injections.at(0, widths[-1])])
    net.stages = nn.ModuleList()
    in_ch = net.injections[0].out_channels
    outs = widths[-2::-1] + [c]  # e.g. 512 -> 256 -> 128 -> 64 -> 32 -> 3
    for k, (width, target) in enumerate(zip(outs, sizes[-2::-1]), start=1):
        last = k == len(outs)
        net.stages.append(stage(in_ch, width, sizes[len(sizes) - k], target, last))
        if not last:
            net.injections.append(injections.at(k, width))
            in_ch = net.injections[-1].out_channels


class DeconvDecoder(nn.Module):
    """[z, c] -> linear layers to a small grid -> stride-2 transposed convs -> image logits.

    In full: linear `hidden`, linear to the encoder's last grid, transposed convs (kernel 3,
    stride 2, LeakyReLU) back to the image size, logits (no sigmoid).

    channels: the encoder's stage widths, input side first; the decoder goes through them in reverse.
    hidden: units of the first linear layer, between [z, c] and the grid.
    final_side: the grid's longer side at most, in pixels, as for the encoder.
    slope: the LeakyReLU's slope for negative inputs."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections,
                 channels: list[PositiveInt] = STUDY_CHANNELS, hidden: PositiveInt = 1024,
                 final_side: PositiveInt = 7, slope: NonNegativeFloat = 0.2):  # noqa: B006
        super().__init__()

        def stage(in_ch: int, width: int, source: tuple[int, int], target: tuple[int, int], last: bool) -> nn.Module:
            pad = tuple(t - (2 * s - 1) for s, t in zip(source, target))  # 0 or 1: lands on the encoder's size
            conv = nn.ConvTranspose2d(in_ch, width, 3, stride=2, padding=1, output_padding=pad)
            return conv if last else nn.Sequential(conv, nn.LeakyReLU(slope))

        build_grid_decoder(self, "deconv", stage, image_shape, cond_dim, latent_dim, injections, channels, hidden,
                           final_side, slope)

    def forward(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        h = self.project(torch.cat([z, cond.vector], dim=1)).view(-1, *self.grid)
        h = self.injections[0](h, cond)
        for k, stage in enumerate(self.stages, start=1):
            h = stage(h)
            if k < len(self.injections):
                h = self.injections[k](h, cond)
        return h
