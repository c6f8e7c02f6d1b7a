"""The injection contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import (
    _Checker,
    _cond_to,
    _keeps_rng,
    _probe_condition,
    _run,
)


@_keeps_rng
def check_injection(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                    cond_dim: int = 8, channels: int = 16, spatial: tuple[int, ...] | None = (8, 8),
                    tokens: int = 3, batch: int = 2, registry: Registry | None = None,
                    seed: int = 0) -> nn.Module:
    """An injection: `out_channels`, forward(h [B, C, *spatial], cond) -> [B, out_channels,
    *spatial] in h's dtype (spatial=None checks the MLP layout [B, C]); a condition whose
    batch does not match h must raise; state_dict round trip, determinism, device move."""
    c = _Checker("injection", name, params, registry)
    c.check_params()
    m = c.module(seed, cond_dim=cond_dim, channels=channels)
    out_channels = getattr(m, "out_channels", None)
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels <= 0:
        c.fail("interface", f"attribute 'out_channels' must be a positive int, got {out_channels!r}")
    space = tuple(spatial or ())
    h = torch.randn(batch, channels, *space, generator=torch.Generator().manual_seed(seed + 2))
    cond = _probe_condition(batch, cond_dim, tokens, seed + 3)

    def run(mod: nn.Module, device: str = "cpu") -> torch.Tensor:
        return mod(h.to(device), _cond_to(cond, device))

    out = _run(c, "output shape", run, m)
    c.shape("forward(h, cond)", out, (batch, out_channels, *space))
    c.floating("forward(h, cond)", out, h.dtype)
    c.rejects(f"a condition of batch {batch + 1} with h of batch {batch}",
              lambda: m(h, _probe_condition(batch + 1, cond_dim, tokens, seed)))
    c.round_trip(m, c.module(seed + 1, cond_dim=cond_dim, channels=channels), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, c.module(seed, cond_dim=cond_dim, channels=channels)))
    c.moves(m, run, out)
    return m
