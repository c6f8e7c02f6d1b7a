"""FiLM: the condition scales and shifts each channel (Perez et al., 2018)."""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.recipe import PositiveInt


class FiLM(nn.Module):
    """Per-channel scale and shift from the condition vector: h * (1 + gamma(c)) + beta(c).
    Starts as the identity, so adding it never breaks a network at step 0.

    hidden: units of a hidden layer (SiLU) before gamma and beta (null: one linear layer)."""

    def __init__(self, *, cond_dim: int, channels: int, hidden: PositiveInt | None = None):
        super().__init__()
        layers = [nn.Linear(cond_dim, hidden), nn.SiLU()] if hidden else []
        last = nn.Linear(hidden or cond_dim, 2 * channels)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.film = nn.Sequential(*layers, last)
        self.out_channels = channels

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        gamma, beta = self.film(cond.vector).to(h.dtype).chunk(2, dim=1)
        if h.dim() == 4:
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]
        return h * (1 + gamma) + beta
