"""The prior contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..registry import Registry
from .checker import _Checker, _cond_to, _keeps_rng, _probe_condition, _run


@_keeps_rng
def check_prior(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                cond_dim: int = 8, latent_dim: int = 4, tokens: int = 3, batch: int = 2,
                registry: Registry | None = None, seed: int = 0) -> nn.Module:
    """A prior: forward(cond) -> (mu, logvar), each [B, latent_dim] and finite, so the engine
    can sample z and take the KL; state_dict round trip, determinism, device move."""
    c = _Checker("prior", name, params, registry)
    c.check_params()
    m = c.module(seed, cond_dim=cond_dim, latent_dim=latent_dim)
    cond = _probe_condition(batch, cond_dim, tokens, seed + 3)

    def run(mod: nn.Module, device: str = "cpu"):
        return mod(_cond_to(cond, device))

    out = _run(c, "output shape", run, m)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        c.fail("output shape", f"forward(cond) must return (mu, logvar), got {type(out).__name__}")
    for what, t in zip(("mu", "logvar"), out):
        c.shape(what, t, (batch, latent_dim))
        c.floating(what, t)
    c.round_trip(m, c.module(seed + 1, cond_dim=cond_dim, latent_dim=latent_dim), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, c.module(seed, cond_dim=cond_dim, latent_dim=latent_dim)))
    c.moves(m, run, out)
    return m
