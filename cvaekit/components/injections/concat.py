"""The study's concatenations: the condition vector joined to a network's features as channels."""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import RecipeError
from cvaekit.recipe import PositiveInt


class EarlyConcat(nn.Module):
    """The condition vector broadcast over H x W and concatenated as channels at the input.

    The study's early concat."""

    def __init__(self, *, cond_dim: int, channels: int, proj_dim: PositiveInt | None = None):
        """proj_dim: project the vector linearly to this many channels first (null: join it as it is)."""
        super().__init__()
        if proj_dim is not None and proj_dim < 1:
            raise RecipeError(f"'proj_dim' must be a positive number of channels or null, got {proj_dim}.")
        self.proj = nn.Linear(cond_dim, proj_dim) if proj_dim else nn.Identity()
        self.out_channels = channels + (proj_dim or cond_dim)

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        c = self.proj(cond.vector).to(h.dtype)
        if h.dim() == 4:
            c = c[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return torch.cat([h, c], dim=1)


class MidConcat(EarlyConcat):
    """The condition broadcast and concatenated as channels after stage k.

    The study's mid-network injection: the same operation as early concat, placed deeper."""
