"""The prior contract in a low dimension, where the density can be integrated on a grid: that
`log_prob` is normalised, that `sample` draws from it, that temperature 0 gives its mode (the
most typical z, `cvaekit.core.prior`) and that a lower temperature draws less spread out."""

from __future__ import annotations

import math

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.testing.checker import _Checker, _run

GRID = {1: 4001, 2: 161}  # grid points per dimension
DRAWS = 4000  # samples per condition
MASS_TOLERANCE = 0.03  # |integral of exp(log_prob) - 1|
MODE_TOLERANCE = 0.01  # nats the mode may fall short of the grid's best point


def _repeat(cond: Condition, i: int, n: int) -> Condition:
    """Condition row `i`, `n` times."""
    idx = torch.full((n,), i, dtype=torch.long)
    return cond.index(idx)


def _grid(samples: torch.Tensor, extra: torch.Tensor, dim: int) -> tuple[torch.Tensor, float]:
    """Grid points [G^dim, dim] covering the samples (and `extra`) with half their range again
    on each side, and the volume of one cell."""
    both = torch.cat([samples, extra])
    lo, hi = both.amin(0), both.amax(0)
    pad = 0.5 * (hi - lo).clamp_min(1e-3)
    axes = [torch.linspace(float(a), float(b), GRID[dim]) for a, b in zip(lo - pad, hi + pad)]
    cell = math.prod(float(ax[1] - ax[0]) for ax in axes)
    return torch.cartesian_prod(*axes).view(-1, dim), cell


def check_density(c: _Checker, m: nn.Module, cond: Condition, dim: int, seed: int) -> None:
    """Per probe condition: normalisation, samples against the density, temperature 0 and scaling."""
    b = cond.vector.shape[0]

    def draw(temperature: float, n: int) -> torch.Tensor:
        out = m.sample(cond.index(torch.arange(b).repeat_interleave(n)), generator=torch.Generator().manual_seed(seed + 7), temperature=temperature)
        return out.detach().float().view(b, n, dim)

    full = _run(c, "samples follow log_prob", draw, 1.0, DRAWS)
    half = _run(c, "temperature scaling", draw, 0.5, DRAWS)
    mode = _run(c, "temperature 0", m.sample, cond, torch.Generator().manual_seed(seed), 0.0).detach().float()
    mode_logp = _run(c, "temperature 0", m.log_prob, mode, cond).float()
    for i in range(b):
        grid, cell = _grid(full[i], mode[i:i + 1], dim)
        logp = _run(c, "log_prob", _grid_log_prob, m, grid, _repeat(cond, i, 1)).float()
        _check_mass(c, logp, cell, dim, i)
        weights = (logp - logp.max()).exp()
        weights = weights / weights.sum()
        _check_moments(c, full[i], grid, weights, i)
        _check_mode(c, mode[i], float(mode_logp[i]), grid, logp, i)
        _check_scaling(c, full[i], half[i], hasattr(m, "gaussian"), i)


def _grid_log_prob(m: nn.Module, grid: torch.Tensor, one: Condition, chunk: int = 8192) -> torch.Tensor:
    parts = [m.log_prob(grid[s:s + chunk], _repeat(one, 0, len(grid[s:s + chunk])))
             for s in range(0, len(grid), chunk)]
    return torch.cat(parts).detach()


def _check_mass(c: _Checker, logp: torch.Tensor, cell: float, dim: int, i: int) -> None:
    if not torch.isfinite(logp).all():
        c.fail("log_prob", f"log_prob(z, cond) is NaN or infinite at some z near its samples (condition {i})")
    mass = float(torch.logsumexp(logp, 0).exp() * cell)
    if abs(mass - 1) > MASS_TOLERANCE:
        c.fail("normalised", f"exp(log_prob(z, cond)) integrates to {mass:.3f}, not 1, over a grid around its "
               f"samples (latent_dim {dim}, condition {i}): log_prob is off by {math.log(mass):+.3f} nats "
               f"(a missing constant, such as -0.5 log(2 pi) per dimension), or the samples lie away "
               f"from the density")


def _check_moments(c: _Checker, samples: torch.Tensor, grid: torch.Tensor, weights: torch.Tensor, i: int) -> None:
    """The samples' mean and variance per dimension against those of exp(log_prob)."""
    mean = (weights[:, None] * grid).sum(0)
    var = (weights[:, None] * (grid - mean).pow(2)).sum(0)
    std = var.sqrt().clamp_min(1e-6)
    off = ((samples.mean(0) - mean) / std).abs().max().item()
    ratio = samples.var(0) / var.clamp_min(1e-12)
    if off > 0.1:
        c.fail("samples follow log_prob", f"the mean of sample(cond) is {off:.2f} standard deviations from the "
               f"mean of exp(log_prob) (condition {i}: samples {_fmt(samples.mean(0))}, density {_fmt(mean)}): "
               f"sample must draw from the distribution log_prob describes")
    if not (0.85 < ratio.min().item() and ratio.max().item() < 1.18):
        c.fail("samples follow log_prob", f"the variance of sample(cond) is {_fmt(samples.var(0))} but that of "
               f"exp(log_prob) is {_fmt(var)} (condition {i}): sample must draw from the distribution "
               f"log_prob describes")


def _check_mode(c: _Checker, mode: torch.Tensor, mode_logp: float, grid: torch.Tensor, logp: torch.Tensor,
                i: int) -> None:
    best = int(logp.argmax())
    if mode_logp < float(logp[best]) - MODE_TOLERANCE:
        c.fail("temperature 0", f"sample(cond, temperature=0) gives z = {_fmt(mode)} with log_prob "
               f"{mode_logp:.3f}, but log_prob reaches {float(logp[best]):.3f} at z = {_fmt(grid[best])} "
               f"(condition {i}): temperature 0 must give the most typical z, the prior's mode")


def _check_scaling(c: _Checker, full: torch.Tensor, half: torch.Tensor, gaussian: bool, i: int) -> None:
    """Temperature 0.5 draws less spread out than 1; for a Gaussian, half as spread out."""
    ratio = (half.var(0).sum() / full.var(0).sum().clamp_min(1e-12)).sqrt().item()
    if ratio > 0.9:
        c.fail("temperature scaling", f"sample(cond, temperature=0.5) is spread {ratio:.2f} times as wide as "
               f"sample(cond) (condition {i}): a lower temperature must draw z nearer the most typical z")
    if gaussian and abs(ratio - 0.5) > 0.05:
        c.fail("temperature scaling", f"sample(cond, temperature=0.5) of a Gaussian prior is spread {ratio:.2f} "
               f"times as wide as sample(cond), not 0.5: mu + temperature * sigma * eps (condition {i})")


def _fmt(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in t.tolist()) + "]"

