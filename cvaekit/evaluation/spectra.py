"""The checkerboard measure: how much of a picture's spectral energy sits at period 2, the
pattern a stride-2 transposed convolution leaves (Odena et al., 2016).

`period_two_share` is the share for a batch of pictures; `checkerboard` compares samples with
real pictures (1 = as real, above 1 = a grid real pictures do not have).
"""

from __future__ import annotations

import torch


def period_two_share(images: torch.Tensor, border: int = 0) -> float:
    """The share of the images' spectral energy (each image's mean removed) at the period-2
    frequencies, horizontal and vertical, averaged over images and channels.

    border: pixels cropped from each edge first (so a padding's own pattern does not count)."""
    x = images.float()
    if border:
        x = x[..., border:-border, border:-border]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)
    power = power.reshape(-1, *power.shape[-2:]).mean(0)
    h, w = power.shape
    return ((power[h // 2, :].sum() + power[:, w // 2].sum()) / power.sum().clamp_min(1e-12)).item()


def checkerboard(samples: torch.Tensor, real: torch.Tensor) -> float:
    """The samples' period-2 share over real pictures' (pixels in [0, 1] or 0..255 alike)."""
    return period_two_share(samples) / max(period_two_share(real), 1e-12)
