"""A hierarchy of latent vectors on fully connected layers: the Ladder VAE's form (Sønderby et
al. 2016), with NVAE's posterior given relative to each group's prior and the text read at every
group (FiLM).

The `ladder` networks keep their groups as feature maps, whose convolutions cost a hundred
times the study's MLP on 28x28 pictures. Here every group is a vector (a 1x1 map), so the
hierarchy costs a few times the MLP: the model to put beside single-latent MLPs on
Fashion-MNIST's test NLL. `model.latent_dim` is each group's size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.hierarchy import Group, GroupDraw, TopDownDecoder
from cvaekit.recipe import PositiveInt


class DenseLadderEncoder(nn.Module):
    """[flattened image, condition] -> hidden, then one layer per group level, top last (for the `dense_ladder` decoder).

    hidden: units of the first layer (the study's MLP has 400).
    width: units of each level's features (the decoder's `width`).
    levels: levels of latent groups (the decoder's `levels`)."""

    top_down = True  # gives features for a top-down decoder, not (mu, logvar)

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, hidden: PositiveInt = 400,
                 width: PositiveInt = 128, levels: PositiveInt = 2):
        super().__init__()
        self.inject = injections.at(0, math.prod(image_shape) + cond_dim)
        self.first = nn.Sequential(nn.Linear(self.inject.out_channels, hidden), nn.ReLU())
        sizes = [hidden] + [width] * levels
        self.levels = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: torch.Tensor, cond: Condition) -> list[torch.Tensor]:
        """Each level's features as a 1x1 map [B, width, 1, 1], the top level first."""
        h = self.first(self.inject(torch.cat([x.flatten(1), cond.vector], dim=1), cond))
        kept = []
        for level in self.levels:
            h = level(h)
            kept.append(h[:, :, None, None])
        return kept[::-1]


class DenseLadderDecoder(TopDownDecoder):
    """Latent vectors generated top-down, each with a prior given the groups above and the text; then hidden -> image.

    hidden: units of the output layer's input (the study's MLP has 400).
    width: units of the top-down state (the encoder's `width`).
    levels: levels of latent groups, as for the encoder.
    groups: latent groups per level (each reads that level's features).
    max_logvar: the bound on a posterior's log-variance (keeps early training stable)."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, hidden: PositiveInt = 400,
                 width: PositiveInt = 128, levels: PositiveInt = 2, groups: PositiveInt = 1, max_logvar: float = 2.0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.start = nn.Parameter(torch.zeros(1, width, 1, 1))
        self.levels, self.groups_per_level = levels, groups
        self.group_shapes = [(latent_dim, 1, 1)] * (levels * groups)
        self.cells = nn.ModuleList(Group(width, latent_dim, cond_dim, max_logvar, kernel=1)
                                   for _ in range(levels * groups))
        self.inject = injections.at(0, width + cond_dim)
        self.head = nn.Sequential(nn.Linear(self.inject.out_channels, hidden), nn.ReLU(),
                                  nn.Linear(hidden, math.prod(image_shape)))

    def top_down(self, cond: Condition, features: list[torch.Tensor] | None, draws: list[GroupDraw]) -> tuple:
        """The decoder's output and each group's terms; from the posterior when `features` are
        given, else from the priors (`draws` say how, group by group)."""
        h = self.start.expand(cond.vector.shape[0], -1, -1, -1)
        terms = []
        for g, cell in enumerate(self.cells):
            feature = None if features is None else features[g // self.groups_per_level]
            h, term = cell(h, cond, feature, draws[g])
            terms.append(term)
        out = self.inject(torch.cat([h.flatten(1), cond.vector.to(h.dtype)], dim=1), cond)
        return self.head(out).view(-1, *self.image_shape), terms

    @property
    def group_count(self) -> int:
        return len(self.cells)
