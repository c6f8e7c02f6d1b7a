"""The likelihood p(x | z, c): what the decoder's output means.

With no `model.likelihood` it is the study's Bernoulli over each pixel value, as cvaekit has
always trained. A `likelihood` component is an `nn.Module` with

    out_channels(channels) -> int        channels the decoder outputs for images of `channels`
    log_prob(x, out) -> [B]              log p(x | out) in nats, summed over the pixels
    sample(out, generator=None) -> x     a draw, in [0, 1]
    mean(out) -> x                       the image to show, in [0, 1]
    bits: bool                           whether log_prob is a probability of 8-bit values, so
                                         that -log_prob / (pixels * ln 2) is bits per dimension

`x` holds pixel values in [0, 1] (8-bit values / 255). The decoder is built with
`image_shape = (out_channels(C), H, W)`: the shape of what it outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CONTRACT = ("a likelihood gives out_channels(channels) -> int, log_prob(x, out) -> [B], "
            "sample(out, generator=None) -> images in [0, 1], mean(out) -> images in [0, 1], and bits")


class Bernoulli(nn.Module):
    """Each pixel value a Bernoulli probability, the decoder's output its logit (the study's
    likelihood; exact for binarized images, a proxy for grey or colour values)."""

    bits = False

    def __init__(self, *, image_shape=None):
        super().__init__()  # takes the engine's image_shape like any likelihood, and needs nothing of it

    def out_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(out.float(), x.float(), reduction="none")
        return -bce.flatten(1).sum(1)

    def sample(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = torch.sigmoid(out.float())
        if generator is None:
            return torch.bernoulli(probs)
        return torch.bernoulli(probs.cpu(), generator=generator).to(probs.device)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)


def bits_per_dim(nats: float, dims: int) -> float:
    """Nats per image as bits per dimension (pixel value)."""
    return nats / (dims * math.log(2))
