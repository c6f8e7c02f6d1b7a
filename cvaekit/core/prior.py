"""The prior p(z | c) a CVAE samples from, and the KL term it puts in the loss.

With no `model.prior` the prior is the study's N(0, I) for every condition. A `prior`
component is a distribution over z given the condition, an `nn.Module` with

    log_prob(z, cond) -> [B]                                  log p(z | c), summed over z's dims
    sample(cond, generator=None, temperature=1.0) -> [B, latent_dim]

A diagonal Gaussian prior also gives `gaussian(cond) -> (mu, logvar)`; subclass
`GaussianPrior` and write only that. The KL term is then analytic, as in the study; for any
other prior it is the Monte Carlo estimate log q(z | x) - log p(z | c) at the sampled z.
A prior that needs the model it belongs to (its encoder, as a VampPrior does) defines
`attach(model)`; see `cvaekit.core.model.ModelView`.

The temperature (the one definition, which every doc and help text repeats):

    temperature T scales the prior's spread about its most typical z: 1 samples the prior
    itself; below 1 draws z nearer the most typical z (more typical, less varied images);
    0 gives the most typical z itself: the prior's mode, the z where p(z | c) is highest
    (0 for N(0, I), the mean for a Gaussian).

The engine checks the temperature (a number, 0 or more) before a prior sees it, so a prior
need not. For a mixture, T below 1 also sharpens the weights (the mixture raised to the power
1 / T^2, exact for components far apart), so draws gather at the heaviest peak as T falls.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import CvaekitError

Gaussian = tuple[torch.Tensor, torch.Tensor]  # (mu, logvar), each [B, latent_dim]

CONTRACT = ("a prior gives log_prob(z, cond) -> [B] and sample(cond, generator=None, temperature=1.0) "
            "-> [B, latent_dim]; a diagonal Gaussian prior can subclass cvaekit.prior.GaussianPrior and "
            "define only gaussian(cond) -> (mu, logvar)")


def check_temperature(temperature: float) -> float:
    """`temperature` as a float, or a CvaekitError: it must be a finite number, 0 or more."""
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise CvaekitError(f"The sampling temperature must be a number, 0 or more (1 samples the prior "
                           f"itself, 0 gives its mode); got {temperature!r}.") from None
    if not 0 <= value < math.inf:
        what = "0 or more" if value < 0 else "a finite number, 0 or more"
        raise CvaekitError(f"The sampling temperature must be {what} (1 samples the prior itself, "
                           f"0 gives its mode); got {temperature}.")
    return value


def noise(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None,
          temperature: float) -> torch.Tensor:
    """Standard normal noise scaled by `temperature`, drawn on the CPU when `generator` is given
    (so a seed gives the same pictures on every device), in `like`'s device and dtype."""
    check_temperature(temperature)
    if generator is None:
        eps = torch.randn(shape, device=like.device)
    else:
        eps = torch.randn(shape, generator=generator)
    return (temperature * eps).to(like.device, like.dtype)


def mixture_draw(logits: torch.Tensor, mu: torch.Tensor, std: torch.Tensor,
                 generator: torch.Generator | None, temperature: float) -> torch.Tensor:
    """One draw per row from diagonal Gaussian mixtures (logits [B, K], means and spreads
    [B, K, D]) at `temperature`: a component by its tempered weight (`tempered_logits`), then
    its mean + temperature * its spread * eps; at 0, the mixture's mode (`mixture_mode`)."""
    check_temperature(temperature)
    if temperature == 0:
        return mixture_mode(logits, mu, std)
    logits = tempered_logits(logits, std.log(), temperature)
    probs = logits.float().softmax(-1).detach().cpu()
    pick = torch.multinomial(probs, 1, generator=generator).to(mu.device)[:, 0]
    rows = torch.arange(mu.shape[0], device=mu.device)
    mu, std = mu[rows, pick], std[rows, pick]
    return mu + noise(tuple(mu.shape), mu, generator, temperature) * std


def tempered_logits(logits: torch.Tensor, log_std: torch.Tensor, temperature: float) -> torch.Tensor:
    """The weights of the mixture raised to the power b = 1 / T^2 (exact for components far
    apart): log w_k / T^2 + (1 - 1 / T^2) * sum_d log sigma_kd; unchanged at T = 1."""
    if temperature == 1:
        return logits.float()
    beta = 1.0 / temperature ** 2
    return beta * logits.float().log_softmax(-1) + (1 - beta) * log_std.float().sum(-1)


def _mixture_log_prob(z: torch.Tensor, logw: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per component k: log w_k + log N(z; mu_k, std_k), for z [B, S, D] -> [B, S, K]."""
    diff = (z[:, :, None] - mu[:, None]) / std[:, None]
    inner = -0.5 * (diff.pow(2) + math.log(2 * math.pi)) - std[:, None].log()
    return logw[:, None] + inner.sum(-1)


@torch.no_grad()
def mixture_mode(logits: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, steps: int = 500) -> torch.Tensor:
    """The mode of each row's diagonal Gaussian mixture ([B, K] logits, [B, K, D] means and
    spreads): the fixed-point climb of Carreira-Perpinan (2000) from every component mean, and
    of its end points the one of highest density. [B, D]."""
    logw, mu, std = logits.float().log_softmax(-1), mu.float(), std.float()
    prec = std.pow(-2)[:, None]  # [B, 1, K, D]
    z = mu.clone()  # [B, S = K starts, D]
    for _ in range(steps):
        r = _mixture_log_prob(z, logw, mu, std).softmax(-1)[..., None]  # [B, S, K, 1]
        new = (r * prec * mu[:, None]).sum(2) / (r * prec).sum(2)
        done = (new - z).abs().max() <= 1e-6 * (1 + z.abs().max())
        z = new
        if done:
            break
    density = _mixture_log_prob(z, logw, mu, std).logsumexp(-1)  # [B, S]
    return z[torch.arange(z.shape[0], device=z.device), density.argmax(1)]


def find_mode(log_density: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
              steps: int = 150, rate: float = 0.1) -> torch.Tensor:
    """Climb `log_density` (z [N, D] -> [N]) from `start` [N, D] to a mode: Adam on z alone (the
    density's own parameters get no gradient), its step falling from `rate` to nearly 0 (so it
    settles on a peak a spline's kinks make sharp), keeping each row's best point. Adam works
    element by element, so each row's end point depends on that row alone. For a prior without
    a closed-form mode, such as a flow."""
    z = start.detach().float().clone().requires_grad_(True)
    best, best_value = z.detach().clone(), torch.full((z.shape[0],), -math.inf, device=z.device)
    opt = torch.optim.Adam([z], lr=rate)
    with torch.enable_grad():
        for i in range(steps + 1):
            value = log_density(z).float()
            better = value.detach() > best_value
            best = torch.where(better[:, None], z.detach(), best)
            best_value = torch.where(better, value.detach(), best_value)
            if i == steps:
                break
            for group in opt.param_groups:
                group["lr"] = rate * 0.5 * (1 + math.cos(math.pi * i / steps)) + 1e-5
            (z.grad,) = torch.autograd.grad(-value.sum(), z)
            opt.step()
    return best.to(start.dtype)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


class GaussianPrior(nn.Module):
    """A diagonal Gaussian per condition: define `gaussian(cond) -> (mu, logvar)`."""

    def gaussian(self, cond: Condition) -> Gaussian:
        raise NotImplementedError

    def forward(self, cond: Condition) -> Gaussian:
        return self.gaussian(cond)

    def log_prob(self, z: torch.Tensor, cond: Condition) -> torch.Tensor:
        mu, logvar = self.gaussian(cond)
        return gaussian_log_prob(z.float(), mu.float(), logvar.float())

    def sample(self, cond: Condition, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """mu + temperature * sigma * eps: 1 samples the prior, 0 gives its mode, the mean."""
        mu, logvar = self.gaussian(cond)
        return mu + noise(tuple(mu.shape), mu, generator, temperature) * torch.exp(0.5 * logvar)


def check_prior_interface(prior: nn.Module, name: str) -> None:
    """A prior written for the old contract (forward -> (mu, logvar) only) says what to change."""
    missing = [m for m in ("log_prob", "sample") if not callable(getattr(prior, m, None))]
    if missing:
        raise CvaekitError(f"Prior '{name}' has no {' or '.join(missing)}: {CONTRACT}.")


def sample_latent(prior: nn.Module | None, cond: Condition, latent_dim: int,
                  generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """One z per condition from the prior (noise drawn on the CPU when `generator` is given).

    `temperature` scales the prior's spread about its most typical z: 1 samples the prior
    itself, below 1 draws z nearer the most typical z, 0 gives the prior's mode (see the
    module's docstring). It is checked here, before the prior sees it."""
    temperature = check_temperature(temperature)
    if prior is None:
        return noise((cond.vector.shape[0], latent_dim), cond.vector, generator, temperature)
    return prior.sample(cond, generator=generator, temperature=temperature)


def prior_log_prob(prior: nn.Module | None, z: torch.Tensor, cond: Condition) -> torch.Tensor:
    """log p(z | c) summed over z's dimensions, [B]: the prior's `log_prob`, or N(0, I)'s for a
    model without a prior component (`model.prior` is None)."""
    if prior is None:
        return gaussian_log_prob(z.float(), torch.zeros_like(z, dtype=torch.float), torch.zeros_like(z, dtype=torch.float))
    return prior.log_prob(z.float(), cond).float()


def kl_term(posterior: Gaussian, z: torch.Tensor, prior: nn.Module | None, cond: Condition) -> torch.Tensor:
    """KL(q(z | x) || p(z | c)) summed over latent dimensions and the batch: analytic when the
    prior is N(0, I) or gives `gaussian`, else log q(z) - log p(z | c) at the sampled `z`."""
    if prior is None:
        return kl_divergence(posterior, None)
    gaussian = getattr(prior, "gaussian", None)
    if callable(gaussian):
        return kl_divergence(posterior, gaussian(cond))
    mu, logvar = (t.float() for t in posterior)
    return (gaussian_log_prob(z.float(), mu, logvar) - prior.log_prob(z.float(), cond).float()).sum()


def gaussian_kl(posterior: Gaussian, prior: Gaussian | None) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, element by element (p = N(0, I) when None)."""
    mu, logvar = (t.float() for t in posterior)
    if prior is None:
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    prior_mu, prior_logvar = (t.float() for t in prior)
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)


def kl_divergence(posterior: Gaussian, prior: Gaussian | None) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, summed over latent dimensions and the batch;
    p = N(0, I) when None."""
    return gaussian_kl(posterior, prior).sum()


def kl_per_dim(posterior: Gaussian, prior: nn.Module | None, cond: Condition) -> torch.Tensor | None:
    """KL(q || p) per image and latent dimension, [B, latent_dim], where it is analytic (N(0, I)
    or a prior that gives `gaussian`); None for any other prior."""
    if prior is None:
        return gaussian_kl(posterior, None)
    gaussian = getattr(prior, "gaussian", None)
    return gaussian_kl(posterior, gaussian(cond)) if callable(gaussian) else None
