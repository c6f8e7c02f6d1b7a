"""Where and how the condition enters a network: each injection is `(h, cond) -> h'`.

h is a feature map [B, C, H, W] (conv networks) or a vector [B, D] (MLPs); every injection
takes both and reports the channels it hands on as `out_channels`. The recipe places them:
``injections: [{name: mid, at: 2, net: encoder}]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..condition import Condition
from ..errors import RecipeError
from ..recipe import NonNegativeFloat, PositiveInt


class EarlyConcat(nn.Module):
    """The condition vector broadcast over H x W and concatenated as channels at the input.

    The study's early concat. `proj_dim` first projects the vector linearly to fewer channels."""

    def __init__(self, *, cond_dim: int, channels: int, proj_dim: PositiveInt | None = None):
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


class CrossAttention(nn.Module):
    """Image features attend to the condition's tokens, with a residual and a norm.

    h + attention(norm(h) + position, tokens), with `heads` heads; a vector condition is one
    token."""

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
            out, _ = self.attend(query, tokens, tokens, key_padding_mask=ignore, need_weights=False)
            return h + out[:, 0]
        b, c, height, width = h.shape
        ys = torch.linspace(-1, 1, height, device=h.device, dtype=h.dtype)
        xs = torch.linspace(-1, 1, width, device=h.device, dtype=h.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(1, height * width, 2)
        query = self.norm(h).flatten(2).transpose(1, 2) + self.position(grid)
        out, _ = self.attend(query, tokens, tokens, key_padding_mask=ignore, need_weights=False)
        return h + out.transpose(1, 2).reshape(b, c, height, width)


class FiLM(nn.Module):
    """Per-channel scale and shift from the condition vector: h * (1 + gamma(c)) + beta(c).
    Starts as the identity, so adding it never breaks a network at step 0."""

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
