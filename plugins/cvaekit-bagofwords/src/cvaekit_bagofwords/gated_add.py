"""Gated additive injection: h + tanh(gate) * W c, with one learned gate per channel.

The gate starts at `gate_init` (0 = closed, so the network first trains as if the
condition were not there here, and opens the gate where the condition helps; the
tanh-gated layers of Flamingo use the same trick)."""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.condition import Condition


class GatedAdd(nn.Module):
    """A projection of the condition vector, scaled by a learned per-channel gate, added to h.

    gate_init: starting value of every channel's gate before the tanh (0 starts closed).
    """

    def __init__(self, *, cond_dim: int, channels: int, gate_init: float = 0.0):
        super().__init__()
        self.cond_dim, self.channels = cond_dim, channels
        self.out_channels = channels  # adds, so the channel count is unchanged
        self.project = nn.Linear(cond_dim, channels)
        self.gate = nn.Parameter(torch.full((channels,), float(gate_init)))

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        c = cond.vector
        if h.dim() < 2 or h.shape[1] != self.channels or c.shape != (h.shape[0], self.cond_dim):
            raise ValueError(
                f"gated_add was built for h [B, {self.channels}, ...] and a condition [B, {self.cond_dim}], "
                f"got h {tuple(h.shape)} and condition {tuple(c.shape)}.")
        shift = torch.tanh(self.gate) * self.project(c.to(h.dtype))
        return h + shift.view(*shift.shape, *([1] * (h.dim() - 2)))
