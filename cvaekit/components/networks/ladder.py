"""A hierarchical CVAE's networks: latent groups over several resolutions, generated top-down,
with the text read at every group (NVAE's structure, Vahdat and Kautz 2020, made small).

The encoder (`ladder`) goes bottom-up and keeps a feature map at each latent resolution. The
decoder (`ladder`) starts from a learned map at the lowest resolution and, group by group,
reads the condition (FiLM), gives the group's prior p(z_l | z_<l, c), draws z_l (from the
posterior q(z_l | x, z_<l, c) = the prior shifted and rescaled by what the encoder saw at that
resolution, or from the prior when sampling), and adds it to the map; between resolutions
it resizes and convolves (no checkerboard). Injections are offered after each resolution.
`model.latent_dim` is the channels of each group's z. With `top_vector`, one more group sits
above the lowest resolution: a vector that sees the whole picture, where a layout is decided
once (a map's groups draw each position's noise apart, so none of them can agree on "one shape,
in one cell"); it is the top group that `fit-prior` fits.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.components.networks.conv import stage_sizes
from cvaekit.core.condition import Condition
from cvaekit.core.hierarchy import Group, GroupDraw, TopDownDecoder
from cvaekit.errors import RecipeError
from cvaekit.recipe import AtLeast, PositiveInt


def conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode="replicate" if k > 1 else "zeros")


class Cell(nn.Module):
    """A residual cell: h + conv(SiLU(conv(SiLU(h)))), the second conv starting at zero."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.SiLU(), conv(width, width), nn.SiLU(), conv(width, width))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


def latent_sizes(image_shape, levels: int, final_side: int) -> list[tuple[int, int]]:
    """The `levels` lowest resolutions, lowest first: where the latent groups live."""
    sizes = stage_sizes(image_shape[1], image_shape[2], final_side)
    if len(sizes) < levels + 1:
        raise RecipeError(f"The ladder networks need {levels} latent resolutions below the image's "
                          f"{image_shape[1]}x{image_shape[2]} but it halves only {len(sizes) - 1} times to "
                          f"'final_side' {final_side}: lower 'levels' or 'final_side'.")
    return sizes[::-1][:levels]


class LadderEncoder(nn.Module):
    """Bottom-up residual cells, keeping a feature map at each latent resolution (for the `ladder` decoder).

    width: channels of every feature map.
    levels: latent resolutions (the image halved down to `final_side`, the lowest `levels` of them).
    final_side: the lowest resolution's longer side at most, in pixels.
    cells: residual cells per resolution.
    top_vector: the size of a latent vector above the lowest resolution (0: none; the decoder's `top_vector`)."""

    top_down = True  # gives features for a top-down decoder, not (mu, logvar)

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, width: PositiveInt = 64,
                 levels: PositiveInt = 3, final_side: PositiveInt = 4, cells: Annotated[int, AtLeast(1)] = 1,
                 top_vector: Annotated[int, AtLeast(0)] = 0):
        super().__init__()
        self.sizes = latent_sizes(image_shape, levels, final_side)[::-1]  # highest resolution first
        self.inject = injections.at(0, image_shape[0])
        self.stem = conv(self.inject.out_channels, width)
        self.cells = nn.ModuleList([nn.Sequential(*[Cell(width) for _ in range(cells)]) for _ in self.sizes])
        lowest = width * self.sizes[-1][0] * self.sizes[-1][1]
        self.summary = nn.Sequential(nn.SiLU(), nn.Flatten(), nn.Linear(lowest, width)) if top_vector else None

    def forward(self, x: torch.Tensor, cond: Condition) -> list[torch.Tensor]:
        """Feature maps at the latent resolutions, lowest resolution first. Above the highest
        latent resolution the image is only pooled (no cells where pixels are most numerous)."""
        h = self.stem(self.inject(x, cond))
        kept = []
        for size, cell in zip(self.sizes, self.cells):
            h = cell(F.interpolate(h, size=size, mode="area") if h.shape[-2:] != size else h)
            kept.append(h)
        if self.summary is not None:  # the whole lowest map, places kept, for the top vector
            kept.append(self.summary(h)[:, :, None, None])
        return kept[::-1]


class LadderDecoder(TopDownDecoder):
    """Latent groups generated top-down over several resolutions, each with a prior given the groups above and the text.

    width: channels of the top-down map (the encoder's `width`).
    levels: latent resolutions, as for the encoder.
    groups: latent groups per resolution.
    final_side: the lowest resolution's longer side at most, in pixels.
    max_logvar: the bound on a posterior's log-variance (keeps early training stable).
    top_vector: the size of a latent vector above the lowest resolution, the top group (0: none).
    text: which groups read the text (FiLM): `every` one, or the `top` one only (what the text at every group buys, measured; injections still read it).
    spatial_priors: each map group's prior read from a 3x3 neighbourhood, after a residual cell on the resized map (NVAE's form), so that it tells apart the positions a resize copied (false: a 1x1 prior on the resized map, as in models trained before this option).
    autoregressive_priors: each map group's prior also reads the z drawn before each position (PixelCNN's masked convolutions), so positions agree where one shape is; sampling then draws a map's positions one by one.
    autoregressive_levels: with autoregressive_priors, only the groups of the N lowest resolutions get them (0: every resolution). Sampling makes one pass of the masked convolutions per position, so a 32x32 map costs 16x an 8x8 one."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, width: PositiveInt = 64,
                 levels: PositiveInt = 3, groups: PositiveInt = 2, final_side: PositiveInt = 4,
                 max_logvar: float = 2.0, top_vector: Annotated[int, AtLeast(0)] = 0,
                 text: Literal["every", "top"] = "every", spatial_priors: bool = False,
                 autoregressive_priors: bool = False, autoregressive_levels: Annotated[int, AtLeast(0)] = 0):
        super().__init__()
        self.sizes = latent_sizes(image_shape, levels, final_side)
        self.start = nn.Parameter(torch.zeros(1, width, *self.sizes[0]))
        self.groups_per_level = groups
        self.group_shapes = [(latent_dim, *size) for size in self.sizes for _ in range(groups)]
        self.top = TopVector(width, top_vector, cond_dim, self.sizes[0], max_logvar) if top_vector else None
        if self.top is not None:
            self.group_shapes.insert(0, (top_vector, 1, 1))
        reads = [text == "every" or (g == 0 and not top_vector) for g in range(levels * groups)]  # a top vector reads it
        autoregressive_at = [autoregressive_priors and (not autoregressive_levels or g // groups < autoregressive_levels)
                             for g in range(levels * groups)]  # cells go from the lowest resolution up
        self.cells = nn.ModuleList(Group(width, latent_dim, cond_dim, max_logvar, reads_text=r,
                                         prior_kernel=3 if spatial_priors else 1, autoregressive=a)
                                   for r, a in zip(reads, autoregressive_at))
        self.settle = nn.ModuleList(Cell(width) for _ in self.sizes[1:]) if spatial_priors else None
        self.injections = nn.ModuleList(injections.at(k, width) for k in range(levels))
        self.widen = nn.ModuleList(conv(inj.out_channels, width, 1) for inj in self.injections)
        below = stage_sizes(image_shape[1], image_shape[2], final_side)[::-1][levels:]  # to the image size
        widths = [max(width >> (k + 1), 8) for k in range(len(below))]  # halved at each rise: pixels cost most
        self.rise = nn.ModuleList(nn.Sequential(conv(w_in, w_out), nn.SiLU())
                                  for w_in, w_out in zip([width, *widths], widths))
        self.rise_sizes = below
        self.head = conv(widths[-1] if widths else width, image_shape[0])

    def top_down(self, cond: Condition, features: list[torch.Tensor] | None, draws: list[GroupDraw]) -> tuple:
        """The decoder's output and each group's (z, kl, log q, log p); from the posterior when
        `features` are given, else from the priors (`draws` say how, group by group)."""
        h = self.start.expand(cond.vector.shape[0], -1, -1, -1)
        terms, g = [], 0
        if features is not None and len(features) != len(self.sizes) + (self.top is not None):
            raise RecipeError(f"The ladder decoder reads {len(self.sizes) + (self.top is not None)} feature maps but its "
                              f"encoder gives {len(features)}: give both the same 'levels' and 'top_vector'.")
        if self.top is not None:
            h, term = self.top(h, cond, None if features is None else features[0], draws[0])
            terms, features, draws = [term], None if features is None else features[1:], draws[1:]
        for level, size in enumerate(self.sizes):
            if h.shape[-2:] != size:
                h = F.interpolate(h, size=size, mode="nearest")
                h = self.settle[level - 1](h) if self.settle is not None else h
            for _ in range(self.groups_per_level):
                feature = None if features is None else features[level]
                h, term = self.cells[g](h, cond, feature, draws[g])
                terms.append(term)
                g += 1
            h = self.widen[level](self.injections[level](h, cond))
        for size, stage in zip(self.rise_sizes, self.rise):  # resize, then convolve: no checkerboard
            h = stage(F.interpolate(h, size=size, mode="nearest"))
        return self.head(h), terms


class TopVector(nn.Module):
    """The top group as one vector: drawn at 1x1 from a prior given the text, then unfolded
    onto the lowest map by a linear layer (each position its own weights: places survive)."""

    def __init__(self, width: int, size: int, cond_dim: int, lowest: tuple[int, int], max_logvar: float):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, width, 1, 1))
        self.group = Group(width, size, cond_dim, max_logvar, kernel=1)
        self.unfold = nn.Linear(width, width * lowest[0] * lowest[1])

    def forward(self, h: torch.Tensor, cond: Condition, feature: torch.Tensor | None, draw: GroupDraw) -> tuple:
        v, term = self.group(self.start.expand(h.shape[0], -1, -1, -1), cond, feature, draw)
        return h + self.unfold(v.flatten(1)).view_as(h), term
