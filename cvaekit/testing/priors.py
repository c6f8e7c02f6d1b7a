"""The prior contract: a distribution over z given the condition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.model import CVAE, attach_prior
from cvaekit.core.prior import CONTRACT, gaussian_log_prob
from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import (
    _Checker,
    _cond_to,
    _keeps_rng,
    _probe_condition,
    _run,
)
from cvaekit.testing.prior_density import check_density
from cvaekit.testing.probes import probe_model

DENSITY_DIMS = (1, 2)


@_keeps_rng
def check_prior(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                cond_dim: int = 8, latent_dim: int = 4, tokens: int = 3, batch: int = 2,
                density_dim: int = 2, registry: Registry | None = None, seed: int = 0) -> nn.Module:
    """A prior: `log_prob(z, cond)` -> [B] finite and differentiable in the prior's parameters;
    `sample(cond, generator, temperature)` -> [B, latent_dim], the same for the same seed;
    `gaussian(cond)`, where given, -> (mu, logvar) that agree with `log_prob`; state_dict round
    trip, determinism, device move. Then, built again at `density_dim` (1 or 2) where its
    density can be integrated on a grid: exp(log_prob) integrates to 1, samples have the
    density's mean and variance, temperature 0 gives its mode and temperature 0.5 draws less
    spread out than 1 (half as spread for a Gaussian). A prior with `attach(model)` is attached
    to a small probe model first, as the engine attaches it to the real one."""
    if density_dim not in DENSITY_DIMS:
        raise ValueError(f"density_dim must be one of {DENSITY_DIMS} (a grid in more dimensions is too "
                         f"big to integrate), got {density_dim!r}.")
    c = _Checker("prior", name, params, registry)
    c.check_params()

    probes = {dim: _probe(cond_dim, dim) for dim in {latent_dim, density_dim}}  # one model per size

    def build(s: int, dim: int = latent_dim) -> nn.Module:
        return _attached(c, c.module(s, cond_dim=cond_dim, latent_dim=dim), probes[dim])

    m = build(seed)
    cond = _probe_condition(batch, cond_dim, tokens, seed + 3)
    z = torch.randn(batch, latent_dim, generator=torch.Generator().manual_seed(seed + 4))

    def draw(mod: nn.Module, device: str = "cpu", temperature: float = 1.0) -> torch.Tensor:
        probes[latent_dim].to(device)  # an attached prior's model moves with it, as in the engine
        return mod.sample(_cond_to(cond, device), generator=torch.Generator().manual_seed(seed),
                          temperature=temperature)

    def density(mod: nn.Module, device: str = "cpu") -> torch.Tensor:
        probes[latent_dim].to(device)
        return mod.log_prob(z.to(device), _cond_to(cond, device))

    samples = _check_sampling(c, m, draw, batch, latent_dim)
    logp = _check_log_prob(c, m, z, cond, batch)
    _check_gaussian_agrees(c, m, z, cond, logp, batch, latent_dim)

    c.round_trip(m, build(seed + 1), density)
    c.same("determinism", "two instances built under the same seed give different log_prob",
           logp, _run(c, "determinism", density, build(seed)))
    c.moves(m, density, logp)
    c.moves(m, draw, samples)
    check_density(c, build(seed, density_dim), cond, density_dim, seed)
    return m


def _probe(cond_dim: int, latent_dim: int) -> CVAE:
    """The probe model an attached prior gets: the same weights every time (the checks build
    several instances of the prior and compare them)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return probe_model(cond_dim, latent_dim)


def _attached(c: _Checker, m: nn.Module, probe: CVAE) -> nn.Module:
    """A prior with `attach(model)` gets a small probe model, as the engine gives it the real one."""
    _require_prior_interface(c, m)
    if callable(getattr(m, "attach", None)):
        with c.point("attach"):
            attach_prior(m, probe)
        m.eval()
    return m


def _require_prior_interface(c: _Checker, m: nn.Module) -> None:
    """Fail early, pointing old-contract priors at the rename that fixes them."""
    missing = [f for f in ("log_prob", "sample") if not callable(getattr(m, f, None))]
    if missing:
        c.fail("interface", f"it has no {' or '.join(missing)}: {CONTRACT} (a prior written for the "
               f"old contract, forward(cond) -> (mu, logvar), becomes a GaussianPrior by renaming "
               f"forward to gaussian)")


def _check_sampling(c: _Checker, m: nn.Module, draw: Callable[..., torch.Tensor],
                    batch: int, latent_dim: int) -> torch.Tensor:
    """Samples must be seeded by the generator alone and allow temperature 0 (the engine refuses a
    negative temperature before a prior sees it)."""
    samples = _run(c, "sample", draw, m)
    c.shape("sample(cond)", samples, (batch, latent_dim))
    c.floating("sample(cond)", samples)
    c.same("sample", "two samples with generators of the same seed differ", samples, _run(c, "sample", draw, m))
    cool = _run(c, "sample", draw, m, "cpu", 0.0)
    c.shape("sample(cond, temperature=0)", cool, (batch, latent_dim))
    c.floating("sample(cond, temperature=0)", cool)
    return samples


def _check_log_prob(c: _Checker, m: nn.Module, z: torch.Tensor, cond: Condition,
                    batch: int) -> torch.Tensor:
    """log_prob is the training loss's prior term, so it must be [B], finite and give gradients."""
    with c.point("log_prob"):
        logp = m.log_prob(z, cond)
    c.shape("log_prob(z, cond)", logp, (batch,))
    c.floating("log_prob(z, cond)", logp)
    trainable = [p for p in m.parameters() if p.requires_grad]
    if trainable:
        with c.point("log_prob"):
            m.log_prob(z, cond).sum().backward()
        if all(p.grad is None or not p.grad.any() for p in trainable):
            c.fail("log_prob", "log_prob(z, cond) gives no gradient to the prior's parameters, so it cannot be trained")
        m.zero_grad(set_to_none=True)
    return logp


def _check_gaussian_agrees(c: _Checker, m: nn.Module, z: torch.Tensor, cond: Condition,
                           logp: torch.Tensor, batch: int, latent_dim: int) -> None:
    """A prior that offers gaussian(cond) is used in closed form (the KL), so it must match log_prob."""
    gaussian = getattr(m, "gaussian", None)
    if not callable(gaussian):
        return
    out = _run(c, "gaussian", gaussian, cond)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        c.fail("gaussian", f"gaussian(cond) must return (mu, logvar), got {type(out).__name__}")
    for what, t in zip(("mu", "logvar"), out):
        c.shape(what, t, (batch, latent_dim))
        c.floating(what, t)
    expected = gaussian_log_prob(z, *(t.detach().float() for t in out))
    c.same("gaussian", "log_prob(z, cond) disagrees with the Gaussian that gaussian(cond) gives",
           logp, expected, exact=False)
