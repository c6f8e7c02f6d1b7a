"""Cross-attention: image features attend to the caption's tokens (the study's attention variant)."""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.attention import attend
from cvaekit.core.condition import Condition
from cvaekit.errors import RecipeError
from cvaekit.recipe import NonNegativeFloat, PositiveInt


class CrossAttention(nn.Module):
    """Image features attend to the condition's tokens, with a residual and a norm.

    h + attention(norm(h) + position, tokens); a vector condition is one token.

    heads: attention heads; they must divide the channel count at the injection's stage.
    dropout: dropout on the attention weights during training, at least 0 and below 1."""

    def __init__(self, *, cond_dim: int, channels: int, heads: PositiveInt = 4, dropout: NonNegativeFloat = 0.0):
        super().__init__()
        if not 0 <= dropout < 1:
            raise RecipeError(f"Injection 'cross_attention': 'dropout' must be at least 0 and below 1, got {dropout}.")
        if heads < 1 or channels % heads:
            raise RecipeError(f"Injection 'cross_attention' at a stage with {channels} channels needs "
                              f"'heads' to divide {channels}, got {heads}. Try "
                              f"{', '.join(str(d) for d in (1, 2, 4, 8) if channels % d == 0)}.")
        self.norm = nn.GroupNorm(1, channels)  # layer norm over C (and H, W) for maps and vectors
        self.position = nn.Linear(2, channels)  # where each query sits, so attention can place things
        self.attend = nn.MultiheadAttention(channels, heads, dropout=dropout, kdim=cond_dim,
                                            vdim=cond_dim, batch_first=True)
        self.out_channels = channels

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        tokens = cond.tokens.to(h.dtype)
        ignore = None if cond.mask is None else ~cond.mask.bool()
        if h.dim() == 2:  # one query at the centre
            query = self.norm(h)[:, None] + self.position(h.new_zeros(1, 1, 2))
            return h + attend(self.attend, query, tokens, ignore)[:, 0]
        b, c, height, width = h.shape
        ys = torch.linspace(-1, 1, height, device=h.device, dtype=h.dtype)
        xs = torch.linspace(-1, 1, width, device=h.device, dtype=h.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(1, height * width, 2)
        query = self.norm(h).flatten(2).transpose(1, 2) + self.position(grid)
        out = attend(self.attend, query, tokens, ignore)
        return h + out.transpose(1, 2).reshape(b, c, height, width)
