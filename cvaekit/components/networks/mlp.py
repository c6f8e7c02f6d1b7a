"""The study's short-text networks: one hidden layer, condition concatenated to the input."""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.recipe import PositiveInt


class MLPEncoder(nn.Module):
    """[flattened image, condition] -> hidden (ReLU) -> mu, logvar.

    hidden: units of the hidden layer."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, hidden: PositiveInt = 400):
        super().__init__()
        self.inject = injections.at(0, math.prod(image_shape) + cond_dim)
        self.hidden = nn.Sequential(nn.Linear(self.inject.out_channels, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor, cond: Condition):
        h = self.inject(torch.cat([x.flatten(1), cond.vector], dim=1), cond)
        h = self.hidden(h)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """[z, condition] -> hidden (ReLU) -> image logits.

    hidden: units of the hidden layer."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections, hidden: PositiveInt = 400):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.inject = injections.at(0, latent_dim + cond_dim)
        self.net = nn.Sequential(nn.Linear(self.inject.out_channels, hidden), nn.ReLU(),
                                 nn.Linear(hidden, math.prod(image_shape)))

    def forward(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        h = self.inject(torch.cat([z, cond.vector], dim=1), cond)
        return self.net(h).view(-1, *self.image_shape)
