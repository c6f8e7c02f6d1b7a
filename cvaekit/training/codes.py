"""The codes a prior is fitted to: posterior Gaussians q(z | x, c) of training images under
their captions, drawn afresh at every step of the fit."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from cvaekit.core.condition import Condition
from cvaekit.core.data import Split
from cvaekit.core.model import CVAE


@dataclass
class Codes:
    """Posterior Gaussians of training images under their captions, with their conditions
    (vectors, and tokens for a prior that reads them)."""

    mu: torch.Tensor  # [N, prior_dim]
    logvar: torch.Tensor  # [N, prior_dim]
    cond: Condition  # vector [N, cond_dim], tokens [N, T, cond_dim], mask [N, T]

    def __len__(self) -> int:
        return self.mu.shape[0]

    def draw(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A fresh z ~ q(z | x, c) for each code at `index`."""
        eps = torch.randn(len(index), self.mu.shape[1], generator=generator)
        return self.mu[index] + eps * torch.exp(0.5 * self.logvar[index])


@torch.no_grad()
def encode(model: CVAE, split, draws: int, batch_size: int, seed: int) -> Codes:
    """`draws` posterior codes per image (a caption drawn at random each time): the top latent
    group's posterior, flattened (the whole z of a single-latent model)."""
    gen = torch.Generator().manual_seed(seed)
    mus, logvars, conds = [], [], []
    for _ in range(draws):
        for start in range(0, len(split), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(split)))
            images, raw = split.batch(idx, generator=gen)
            cond = model.condition(raw)
            top = model.posterior(images.to(model.device), cond, mean=True).groups[0]
            mus.append(top.mu.flatten(1).float().cpu())
            logvars.append(top.logvar.flatten(1).float().cpu())
            conds.append(cond)
    cpu = [Condition(c.vector.float(), c.tokens.float(), c.mask) for c in conds]
    return Codes(torch.cat(mus), torch.cat(logvars), Condition.cat(cpu, device="cpu"))


def to_device(cond: Condition, device) -> Condition:
    return Condition(cond.vector.to(device), cond.tokens.to(device), None if cond.mask is None else cond.mask.to(device))


def hold_out(split: Split, share: float = 0.1) -> tuple[Split, Split]:
    """The training images less a last `share` of them, and that share (at least one image)."""
    k = len(split) - max(1, int(len(split) * share))
    if k < 1:
        return split, split
    return (replace(split, images=split.images[:k], conditions=split.conditions[:k]),
            replace(split, images=split.images[k:], conditions=split.conditions[k:]))
