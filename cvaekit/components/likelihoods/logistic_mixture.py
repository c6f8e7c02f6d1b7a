"""A discretized mixture of logistics over 8-bit values (PixelCNN++, NVAE), channels coupled.

Per pixel, `components` logistics; a component's mean for channel c moves linearly with the
values of channels 0..c-1 (for RGB: green with red, blue with red and green), so colours
within a pixel are not independent. Each 8-bit value gets the logistic's mass over its bin
[v - 1/2, v + 1/2] (of 255ths, in [-1, 1] units); the edge bins take the tails, so the
probabilities of the 256 values sum to 1.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.recipe import PositiveInt

HALF_BIN = 1.0 / 255.0  # half a bin of an 8-bit value in [-1, 1] units
MIN_LOG_SCALE = -7.0


class LogisticMixture(nn.Module):
    """Discretized mixture of logistics over 8-bit values, channels coupled (PixelCNN++).

    components: logistics per pixel. show: the picture drawn for a decoder output, `mode` (the
    most likely component's mean, colours as the model has them) or `mean` (the mixture's mean,
    which averages the components' colours into browns and greys)."""

    bits = True

    def __init__(self, *, image_shape, components: PositiveInt = 10, show: Literal["mode", "mean"] = "mode"):
        super().__init__()
        self.channels = image_shape[0]
        self.k = components
        self.show = show
        self.couplings = self.channels * (self.channels - 1) // 2

    def out_channels(self, channels: int) -> int:
        return self.k * (1 + 2 * channels + channels * (channels - 1) // 2)

    def _split(self, out: torch.Tensor):
        """Mixture logits [B, K, H, W], means and log scales [B, K, C, H, W], couplings [B, K, P, H, W]."""
        b, _, h, w = out.shape
        c, k = self.channels, self.k
        out = out.float()
        logits = out[:, :k]
        rest = out[:, k:].view(b, k, 2 * c + self.couplings, h, w)
        means, log_scales = rest[:, :, :c], rest[:, :, c:2 * c].clamp_min(MIN_LOG_SCALE)
        couplings = torch.tanh(rest[:, :, 2 * c:])
        return logits, means, log_scales, couplings

    def _coupled(self, means: torch.Tensor, couplings: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Each channel's mean moved by the earlier channels' `values` ([B, C, H, W] in [-1, 1])."""
        shifted, p = [means[:, :, 0]], 0
        for c in range(1, self.channels):
            mean = means[:, :, c]
            for j in range(c):
                mean = mean + couplings[:, :, p] * values[:, None, j]
                p += 1
            shifted.append(mean)
        return torch.stack(shifted, 2)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        logits, means, log_scales, couplings = self._split(out)
        v = (x.float() * 2 - 1)  # [B, C, H, W] in [-1, 1]
        centred = v[:, None] - self._coupled(means, couplings, v)
        inv = torch.exp(-log_scales)
        plus, minus = inv * (centred + HALF_BIN), inv * (centred - HALF_BIN)
        log_cdf_plus = plus - F.softplus(plus)  # the lowest value's bin: (-inf, -1 + 1/255]
        log_survival_minus = -F.softplus(minus)  # the highest value's bin: [1 - 1/255, inf)
        delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv * centred
        log_pdf_mid = mid - log_scales - 2 * F.softplus(mid) + torch.log(torch.tensor(HALF_BIN * 2))
        inner = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_pdf_mid)
        v = v[:, None].expand_as(centred)
        per_channel = torch.where(v < -0.999, log_cdf_plus, torch.where(v > 0.999, log_survival_minus, inner))
        per_component = per_channel.sum(2) + torch.log_softmax(logits, 1)  # [B, K, H, W]
        return torch.logsumexp(per_component, 1).flatten(1).sum(1)

    def _draw_component(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        gumbel = -torch.log(-torch.log(_uniform(logits.shape, generator).to(logits.device)))
        return F.one_hot((logits + gumbel).argmax(1), self.k).permute(0, 3, 1, 2).float()  # [B, K, H, W]

    def sample(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        logits, means, log_scales, couplings = self._split(out)
        pick = self._draw_component(logits, generator)[:, :, None]
        mean, log_s = (means * pick).sum(1), (log_scales * pick).sum(1)  # [B, C, H, W]
        coupling = (couplings * pick).sum(1) if self.couplings else None
        u = _uniform(mean.shape, generator).to(mean.device)
        noise = torch.log(u) - torch.log1p(-u)
        values, p = [], 0
        for c in range(self.channels):
            m = mean[:, c]
            for j in range(c):
                m = m + coupling[:, p] * values[j]
                p += 1
            drawn = (m + log_s[:, c].exp() * noise[:, c]).clamp(-1, 1)
            values.append(torch.round((drawn + 1) * 127.5) / 127.5 - 1)  # on the 8-bit grid
        return (torch.stack(values, 1) + 1) / 2

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The picture to show: per `show`, the top component's mean or the mixture's mean
        (either way the coupling applied to the earlier channels' values)."""
        logits, means, _, couplings = self._split(out)
        if self.show == "mode":
            weights = F.one_hot(logits.argmax(1), self.k).permute(0, 3, 1, 2).to(means.dtype)[:, :, None]
        else:
            weights = torch.softmax(logits, 1)[:, :, None]
        values, p = [], 0
        for c in range(self.channels):
            m = means[:, :, c]
            for j in range(c):
                m = m + couplings[:, :, p] * values[j][:, None]
                p += 1
            values.append((weights[:, :, 0] * m).sum(1).clamp(-1, 1))
        return ((torch.stack(values, 1) + 1) / 2).to(out.dtype)


def _uniform(shape, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform draws in (0, 1), away from the ends (logs of both are taken)."""
    u = torch.rand(shape, generator=generator) if generator is not None else torch.rand(shape)
    return u.clamp(1e-5, 1 - 1e-5)
