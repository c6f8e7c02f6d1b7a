"""The latent path: how a model turns images into latent groups and latent groups into images.

Every model has a list of latent groups, from the top: a single-latent CVAE has one (its z, with
the model's prior), a top-down model (`cvaekit.core.hierarchy`) several, each with its own prior.
The objectives, the `nll` metric, sampling, walks, `fit-prior`'s codes and the serve page call
the model's `posterior`, `importance` and `prior_sample` and never ask which kind it is; this
module is the one place that tells them apart.

`model.prior`, when set, is the prior of the top group's codes flattened to `prior_dim`: the
whole z of a single-latent model, or a hierarchy's top group, where it replaces the decoder's
own (trained with the model when the recipe names it, or fitted after by `fit-prior`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from cvaekit.core.condition import Condition
from cvaekit.core.hierarchy import GroupDraw, GroupTerms, TopDownDecoder
from cvaekit.core.prior import (
    check_temperature,
    gaussian_log_prob,
    kl_per_dim,
    prior_log_prob,
    sample_latent,
)
from cvaekit.errors import CvaekitError


class LatentPass:
    """The decoder's output (decoded when first read) and each group's `GroupTerms`, from the top."""

    def __init__(self, groups: list[GroupTerms], out: torch.Tensor | Callable[[], torch.Tensor]):
        self.groups, self._out = groups, out

    @property
    def out(self) -> torch.Tensor:
        if callable(self._out):
            self._out = self._out()
        return self._out


def prior_draw(prior, cond: Condition, dim: int, draw: GroupDraw) -> torch.Tensor:
    """z [B, dim] from a prior component (None: N(0, I)) as `draw` says. A shared draw gives
    every row the same noise, each row under its own condition (its generator's state copied
    for each row), as a walk or a held top group needs."""
    if draw.z is not None:
        return draw.z.flatten(1)
    if not draw.shared:
        return sample_latent(prior, cond, dim, draw.generator, draw.temperature)
    gen = draw.generator or torch.Generator().manual_seed(int(torch.randint(2 ** 62, ())))
    state, rows = gen.get_state(), []
    for i in range(cond.vector.shape[0]):
        row = torch.Generator().set_state(state)
        rows.append(sample_latent(prior, cond.index(torch.tensor([i], device=cond.vector.device)), dim, row,
                                  draw.temperature))
    gen.set_state(row.get_state())  # the generator moves on by one row's draw
    return torch.cat(rows)


def _mc_units(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """A Monte Carlo KL, log q(z) - log p(z) at the drawn z, as one unit per image [B, 1]."""
    return (log_q - log_p)[:, None]


class SingleLatent:
    """One latent vector: the encoder gives (mu, logvar), the model's prior p(z | c), the decoder
    forward(z, cond). Free bits count per latent dimension (Kingma et al. 2016) where the KL is
    analytic (N(0, I) or a Gaussian prior)."""

    reads_features = False  # the encoder gives (mu, logvar)

    def group_shapes(self, model) -> list[tuple[int, ...]]:
        return [(model.latent_dim,)]

    def posterior(self, model, x: torch.Tensor, cond: Condition, mean: bool = False) -> LatentPass:
        mu, logvar = model.encoder(x, cond)
        z = mu if mean else mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        terms = GroupTerms(z, lambda: self._kl_units(model, mu, logvar, z, cond), 1, mu=mu, logvar=logvar)
        return LatentPass([terms], lambda: model.decoder(z, cond))

    @staticmethod
    def _kl_units(model, mu, logvar, z, cond) -> torch.Tensor:
        """Per dimension where analytic, else one Monte Carlo unit per image."""
        analytic = kl_per_dim((mu, logvar), model.prior, cond)
        if analytic is not None:
            return analytic
        mu, logvar = mu.float(), logvar.float()
        return _mc_units(gaussian_log_prob(z.float(), mu, logvar), model.prior.log_prob(z.float(), cond).float())

    def importance(self, model, x: torch.Tensor, cond: Condition, k: int) -> LatentPass:
        """k posterior draws per image from one encoding, [k * B] rows, draw-major."""
        mu, logvar = model.encoder(x, cond)
        mu, logvar = mu.float(), logvar.float()
        z = mu + torch.randn((k, *mu.shape), device=mu.device) * torch.exp(0.5 * logvar)
        flat_z = z.flatten(0, 1)
        repeat = cond.index(torch.arange(x.shape[0], device=x.device).repeat(k))
        out = model.decoder(flat_z.to(mu.dtype), repeat)
        log_p = prior_log_prob(model.prior, flat_z, repeat)
        return LatentPass([GroupTerms(flat_z, log_q=gaussian_log_prob(z, mu, logvar).flatten(),
                                      log_p=log_p)], out)

    def prior_sample(self, model, cond: Condition, draws: list[GroupDraw]) -> LatentPass:
        z = prior_draw(model.prior, cond, model.latent_dim, draws[0])
        return LatentPass([GroupTerms(z)], lambda: model.decoder(z.to(model.device), cond))


class TopDown:
    """Latent groups held by a `TopDownDecoder`, the encoder giving feature maps. Free bits count
    per group (NVAE, VDVAE). A prior fitted to the top group (`model.prior`) replaces the
    decoder's own there, on both paths."""

    reads_features = True  # the encoder gives a feature map per latent resolution

    def group_shapes(self, model) -> list[tuple[int, ...]]:
        return [tuple(s) for s in model.decoder.group_shapes]

    def posterior(self, model, x: torch.Tensor, cond: Condition, mean: bool = False) -> LatentPass:
        draws = [GroupDraw(mean=mean)] * len(model.decoder.group_shapes)
        out, groups = model.decoder.top_down(cond, model.encoder(x, cond), draws)
        if model.prior is not None:
            top = groups[0]
            top.log_p = lambda: model.prior.log_prob(top.z.flatten(1).float(), cond).float()
            top.kl_units = lambda: _mc_units(top.log_q, top.log_p)
        return LatentPass(groups, out)

    def importance(self, model, x: torch.Tensor, cond: Condition, k: int) -> LatentPass:
        """k posterior passes per image (each group drawn given the draws above it), draw-major."""
        repeat = cond.index(torch.arange(x.shape[0], device=x.device).repeat(k))
        return self.posterior(model, x.repeat(k, *[1] * (x.dim() - 1)), repeat)

    def prior_sample(self, model, cond: Condition, draws: list[GroupDraw]) -> LatentPass:
        if model.prior is not None:
            dim = math.prod(model.decoder.group_shapes[0])
            draws = [replace(draws[0], z=prior_draw(model.prior, cond, dim, draws[0])), *draws[1:]]
        out, groups = model.decoder.top_down(cond, None, draws)
        return LatentPass(groups, out)


SINGLE, TOP_DOWN = SingleLatent(), TopDown()


def latent_path(decoder) -> SingleLatent | TopDown:
    """The path for a model with this decoder: the one place the two kinds are told apart."""
    return TOP_DOWN if isinstance(decoder, TopDownDecoder) else SINGLE


def pairing_problem(encoder, decoder) -> str | None:
    """Why these networks cannot make a model (None when they can): a top-down decoder needs an
    encoder that gives feature maps, and a single-latent one an encoder that gives (mu, logvar)."""
    if latent_path(decoder).reads_features == bool(getattr(encoder, "top_down", False)):
        return None
    if latent_path(decoder).reads_features:
        return "is a top-down (hierarchical) decoder, but its encoder gives (mu, logvar)"
    return "is a single-latent decoder, but its encoder gives feature maps for a top-down decoder"


def temperatures(value, groups: int) -> list[float]:
    """One temperature per group: a number for all, or a list from the top group down, each
    checked (a number, 0 or more). A list of the wrong length is an error naming the groups."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * groups
    if len(values) == 1 and groups > 1:
        values = values * groups
    if len(values) != groups:
        what = ("one latent vector (a single-latent model): give one temperature" if groups == 1 else
                f"{groups} latent groups: give one temperature for all, or one per group from the top")
        raise CvaekitError(f"This model has {what}; got {len(values)} "
                           f"({', '.join(f'{v:g}' if isinstance(v, (int, float)) else repr(v) for v in values)}).")
    return [check_temperature(v) for v in values]


def check_fix_top(fix_top, groups: int) -> int:
    """How many top groups to hold: 0 to groups - 1 (at least one group must vary)."""
    if isinstance(fix_top, bool) or not isinstance(fix_top, int) or fix_top < 0:
        raise CvaekitError(f"The number of top groups to hold fixed must be a whole number, 0 or more; got {fix_top!r}.")
    if fix_top >= groups and fix_top > 0:
        what = ("one latent vector (a single-latent model), so there are no top groups to hold: leave out "
                "--fix-top (fix_top)" if groups == 1 else
                f"{groups} latent groups: hold 0 to {groups - 1} of them, so that some vary")
        raise CvaekitError(f"This model has {what}; got {fix_top}.")
    return fix_top


def group_draws(groups: int, temperature=1.0, generator: torch.Generator | None = None,
                fix_top: int = 0) -> list[GroupDraw]:
    """A draw per group from the prior: `temperature` one for all or one per group from the top;
    the top `fix_top` groups drawn once for every row (one caption's images share them)."""
    temps, fix_top = temperatures(temperature, groups), check_fix_top(fix_top, groups)
    return [GroupDraw(t, generator, shared=i < fix_top) for i, t in enumerate(temps)]
